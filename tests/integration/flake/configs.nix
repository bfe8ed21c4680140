# The test configurations.  Used by flake.nix (nixosConfigurations) and by
# default.nix (classic mode).  To add one, add an entry to `special` or a
# name to `hostNames`; see tests/integration/README.md.
{ salt ? "" }:
let
  lib = import ./lib.nix { inherit salt; };
  inherit (lib) mkSystem packages;

  # Hand-written configurations.
  special = {
    # Normal system with a specialisation called "extra".
    alpha = {
      specialisations.extra = {
        version = "26.05.test-alpha-extra";
        pkgs = with packages; [ hello_2_12 jq_1_6 tree_2_1_0 cowsay_3_04 ];
      };
    };
    # A second normal system: hello/jq upgraded, tree removed, cowsay added.
    beta = {
      pkgs = with packages; [ hello_2_12_1 jq_1_7 cowsay_3_04 ];
      revision = "rev-beta-0123456789abcdef";
    };
    # switch-to-configuration logs, then exits 3.
    failing = { stcExit = 3; };
    # toplevel without $out/nixos-version (safety check of ng).
    nover = { withVersionFile = false; };
    # sw/bin/nixos-version --configuration-revision fails ("Unknown").
    norev = { revision = null; };
    # Magic rollback: activation locks the deploy user out (its key goes).
    lockout = {
      stcExtra = ''
        if [ -n "$home" ] && [ -e "$home/.ssh/authorized_keys" ]; then
          mv "$home/.ssh/authorized_keys" "$logdir/ak.crdeploy.bak"
        fi
      '';
    };
    # Magic rollback: activation leaves the system unhealthy.
    unhealthy = {
      stcExtra = ''
        echo 0 > "$logdir/healthy"; rm -f "$logdir/www/health"
      '';
    };
    # Activation takes a while (to cut the connection in the middle).
    slow = { stcExtra = "sleep 6"; };
  };

  # One ordinary configuration per test host name, so that a flake reference
  # without "#name" (default: the target's hostname) resolves.
  hostNames = [
    "default"
    "local1" "local2"
    "deployer1" "deployer2"
    "target1" "target2" "target3" "target4"
    "builder1" "builder2"
  ];

  mk = name: args: mkSystem ({ inherit name; } // args);
in
builtins.listToAttrs (map (n: { name = n; value = mk n { }; }) hostNames)
// builtins.mapAttrs mk special
