# Classic entry point for a single configuration (alpha), so that
# `crebuild build -f system.nix` (no -A) finds config.system.build.toplevel
# at the top level.
{ salt ? (if builtins.pathExists ./salt then builtins.readFile ./salt else "") }:
(import ./configs.nix { inherit salt; }).alpha
