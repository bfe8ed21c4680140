# Building blocks of the benchmark systems (see flake.nix).
let
  system = "x86_64-linux";
  mkDrv = name: script: env:
    derivation ({
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" script ];
      PATH = "/usr/bin:/bin";
    } // env);

  range = n: builtins.genList (i: i) n;

  # One derivation with `count` outputs o0..o{count-1}; every output is a
  # directory with `data` = `bytes` random bytes.
  leafGroup = name: count: bytes:
    let drv = mkDrv name ''
      set -e
      for o in $outputs; do
        eval "p=\$$o"
        mkdir -p "$p"
        head -c ${toString bytes} /dev/urandom > "$p/data"
      done
    '' { outputs = map (i: "o${toString i}") (range count); };
    in map (i: drv."o${toString i}") (range count);

  perGroup = 100;
  min = a: b: if a < b then a else b;

  # `count` leaves of 4 KiB for the system `tag`.
  smallLeaves = tag: count:
    let groups = (count + perGroup - 1) / perGroup;
    in builtins.concatLists (map
      (g: leafGroup "leaf${toString tag}-g${toString g}" (min perGroup (count - g * perGroup)) 4096)
      (range groups));

  bigLeaves = count: mib:
    builtins.concatLists (map (g: leafGroup "blob${toString mib}m-${toString g}" 1 (mib * 1048576)) (range count));

  # The switch-to-configuration of every benchmark system: records the call
  # and points /nix/var/bench/current-system at itself (the hosts have no
  # systemd; this is what "activation" costs here: next to nothing).
  stc = ''
    #!/bin/sh
    PATH=/usr/bin:/bin
    self=@OUT@
    case "''${1-}" in switch|boot|test|dry-activate) ;; *) echo "usage: $0 switch|boot|test|dry-activate" >&2; exit 1 ;; esac
    mkdir -p /nix/var/bench
    echo "$self $1" >> /nix/var/bench/activations.log
    case "$1" in switch|test) ln -sfn "$self" /nix/var/bench/current-system ;; esac
    exit 0
  '';

  mkToplevel = name: leaves:
    mkDrv "nixos-system-${name}-26.05.bench" ''
      set -e
      mkdir -p "$out/bin"
      printf '%s' "26.05.bench-$sysname" > "$out/nixos-version"
      printf '%s' "${system}" > "$out/system"
      cp "$leavesPath" "$out/leaves"
      printf '%s\n' "$stc" > "$out/bin/switch-to-configuration"
      chmod 0555 "$out/bin/switch-to-configuration"
    '' {
      sysname = name;
      leaves = builtins.concatStringsSep "\n" (map toString leaves);
      passAsFile = [ "leaves" ];
      stc = builtins.replaceStrings [ "@OUT@" ] [ (builtins.placeholder "out") ] stc;
    };

  # Shaped like nixpkgs.lib.nixosSystem as far as nixos-rebuild looks.
  mkSystem = name: leaves: {
    config.system.build.toplevel = mkToplevel name leaves;
    config.networking.hostName = name;
  };
in
{
  inherit mkSystem system smallLeaves bigLeaves;
}
