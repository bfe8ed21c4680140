# Classic (non-flake) entry point:
#   nix-build default.nix -A alpha.config.system.build.toplevel
#   crebuild build -f default.nix -A alpha
# Every attribute is a configuration ({ config = ...; }), same set as the flake.
{ salt ? (if builtins.pathExists ./salt then builtins.readFile ./salt else "") }:
import ./configs.nix { inherit salt; }
