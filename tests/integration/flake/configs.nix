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
    # Fault injection (t_faults.sh): a package whose build fails.
    buildfail = { pkgs = [ (mkBroken "broken-1.0") ]; };
    # Fault injection: a package whose build takes a while (signals during
    # the build).  The salt makes it a new build each time it changes.
    slowbuild = { pkgs = [ (mkSleeper "sleeper-1.0" 8) ]; };
    # Hostile remote output (t_hostile.sh): activation prints 16 MiB on
    # stdout as one line, 16 MiB of short lines on stderr, then a 16 MiB
    # line on stderr, all without a final newline.
    flood = {
      stcExtra = ''
        head -c 16777216 /dev/zero | tr '\0' x
        yes 'flood: a line of activation output on stderr' | head -c 16777216 >&2
        head -c 16777216 /dev/zero | tr '\0' y >&2
      '';
    };
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

  # Packages for the fault-injection configurations.
  mkBroken = name: derivation {
    inherit name salt;
    system = "x86_64-linux";
    builder = "/bin/sh";
    args = [ "-c" "echo 'broken: this package fails to build on purpose' >&2; exit 1" ];
  };
  mkSleeper = name: secs: derivation {
    inherit name salt;
    system = "x86_64-linux";
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" "sleep ${toString secs}; mkdir -p $out/bin; echo done > $out/bin/sleeper" ];
  };
in
builtins.listToAttrs (map (n: { name = n; value = mk n { }; }) hostNames)
// builtins.mapAttrs mk special
