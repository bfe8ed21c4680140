# Building blocks for fake, NixOS-shaped system configurations.
#
# No nixpkgs: every derivation is a tiny /bin/sh script that uses the build
# machine's coreutils (sandbox = false, PATH=/usr/bin:/bin).  The result has
# the same *shape* as a NixOS configuration as far as nixos-rebuild/crebuild
# care: config.system.build.{toplevel,vm,vmWithBootLoader,images.<v>}.
#
# Everything here is pure (no currentSystem, no environment), so it works the
# same from a flake and from classic `nix-build default.nix -A ...`.
{ salt ? "" }:
let
  system = "x86_64-linux";

  # A derivation built by `/bin/sh -c SCRIPT`.  Extra attributes become
  # environment variables of the builder.
  mkDrv = name: script: env:
    derivation ({
      inherit name system;
      builder = "/bin/sh";
      args = [ "-c" script ];
      PATH = "/usr/bin:/bin";
    } // env);

  # A leaf "package": bin/<pname> and a small doc file.
  mkPackage = pname: version:
    mkDrv "${pname}-${version}" ''
      set -e
      mkdir -p "$out/bin" "$out/share/doc/$pname"
      printf '#!/bin/sh\necho "%s %s"\n' "$pname" "$version" > "$out/bin/$pname"
      chmod 0555 "$out/bin/$pname"
      i=0
      while [ $i -lt 64 ]; do echo "$pname $version line $i"; i=$((i + 1)); done \
        > "$out/share/doc/$pname/README"
    '' { inherit pname version; };

  packages = {
    hello_2_12 = mkPackage "hello" "2.12";
    hello_2_12_1 = mkPackage "hello" "2.12.1";
    jq_1_6 = mkPackage "jq" "1.6";
    jq_1_7 = mkPackage "jq" "1.7";
    tree_2_1_0 = mkPackage "tree" "2.1.0";
    cowsay_3_04 = mkPackage "cowsay" "3.04";
  };

  # The kernel: $out/bzImage plus $out/lib/modules/<kver>/.
  mkKernel = kver:
    mkDrv "linux-${kver}" ''
      set -e
      mkdir -p "$out/lib/modules/$kver"
      echo "fake kernel $kver" > "$out/bzImage"
      : > "$out/lib/modules/$kver/modules.dep"
      echo "$kver" > "$out/System.map"
    '' { inherit kver; };

  defaultKernel = mkKernel "6.1.0-test";

  # sw/ = "system-path": bin/nixos-version plus symlinks into the packages.
  mkSystemPath = { version, revision, pkgs }:
    mkDrv "system-path" ''
      set -e
      mkdir -p "$out/bin"
      for p in $pkgs; do
        for f in "$p"/bin/*; do ln -s "$f" "$out/bin/''${f##*/}"; done
      done
      printf '%s\n' "$nixosVersionScript" > "$out/bin/nixos-version"
      chmod 0555 "$out/bin/nixos-version"
    '' {
      inherit pkgs;
      nixosVersionScript =
        let
          revCase = if revision == null
            then ''echo "$0: configuration revision is unknown" >&2; exit 1''
            else ''echo "${revision}"'';
          revJson = if revision == null then "" else '',"configurationRevision":"${revision}"'';
        in ''
          #!/bin/sh
          # fake nixos-version (crebuild tests)
          case "''${1-}" in
            "") echo "${version} (Test)" ;;
            --hash|--revision) echo "0000000000000000000000000000000000000000" ;;
            --configuration-revision) ${revCase} ;;
            --json) echo '{"nixosVersion":"${version}","nixpkgsRevision":"0000000000000000000000000000000000000000"${revJson}}' ;;
            *) echo "$0: unknown option '$1'" >&2; exit 1 ;;
          esac
        '';
    };

  # The fake switch-to-configuration.  @OUT@ is this toplevel's store path.
  stcScript = exitCode: extra: ''
    #!/bin/sh
    # fake switch-to-configuration (crebuild integration tests)
    PATH=/usr/bin:/bin''${PATH:+:$PATH}
    export PATH
    self=@OUT@
    action="''${1-<none>}"
    logdir=/nix/var/crebuild-test
    log=$logdir/activations.log
    mkdir -p "$logdir" 2>/dev/null
    printf '%s %s NIXOS_INSTALL_BOOTLOADER=%s LOCALE_ARCHIVE=%s NIXOS_NO_CHECK=%s USER=%s uid=%s argv0=%s\n' \
      "$self" "$action" \
      "''${NIXOS_INSTALL_BOOTLOADER-<unset>}" "''${LOCALE_ARCHIVE-<unset>}" \
      "''${NIXOS_NO_CHECK-<unset>}" "$(id -un)" "$(id -u)" "$0" >> "$log" ||
      echo "switch-to-configuration: cannot write $log" >&2
    echo "stc-stdout: $action $self"
    echo "stc-stderr: $action $self" >&2
    case "$action" in
      switch|boot|test|dry-activate) ;;
      *) echo "Usage: $0 [switch|boot|test|dry-activate]" >&2; exit 1 ;;
    esac
    if [ "$(id -u)" != 0 ]; then
      echo "switch-to-configuration: this program must be run as root" >&2
      exit 1
    fi
    case "$action" in
      switch|test)
        ln -sfn "$self" "$logdir/current-system"
        ln -sfn "$self" /run/current-system
        # What every configuration "declares" (magic rollback tests): the
        # deploy user's key, a healthy state and a health endpoint.
        home=$(getent passwd crdeploy | cut -d: -f6)
        if [ -e "$logdir/ak.crdeploy.bak" ] && [ -n "$home" ]; then
          mv "$logdir/ak.crdeploy.bak" "$home/.ssh/authorized_keys"
        fi
        echo 1 > "$logdir/healthy"
        mkdir -p "$logdir/www" && echo ok > "$logdir/www/health"
        ${extra}
        ;;
    esac
    case "$action" in
      switch|boot) ln -sfn "$self" "$logdir/booted-default" ;;
    esac
    exit ${toString exitCode}
  '';

  mkToplevel =
    { name, version, revision, pkgs, kernel, specialisations, stcExit, withVersionFile, stcExtra }:
    let
      specNames = builtins.attrNames specialisations;
      specLinks = builtins.concatStringsSep " "
        (map (n: "${n}=${specialisations.${n}}") specNames);
    in
    mkDrv "nixos-system-${name}-${version}" ''
      set -e
      mkdir -p "$out/bin" "$out/specialisation"
      if [ "$withVersionFile" = 1 ]; then printf '%s' "$version" > "$out/nixos-version"; fi
      ln -s "$kernel/bzImage" "$out/kernel"
      ln -s "$kernel" "$out/kernel-modules"
      ln -s "$sw" "$out/sw"
      printf '%s' "$system" > "$out/system"
      printf '%s' systemd > "$out/init-interface-version"
      printf '%s' "$salt" > "$out/crebuild-test-salt"
      printf '%s\n' "$stc" > "$out/bin/switch-to-configuration"
      chmod 0555 "$out/bin/switch-to-configuration"
      for s in $specLinks; do ln -s "''${s#*=}" "$out/specialisation/''${s%%=*}"; done
    '' {
      inherit version kernel specLinks salt;
      withVersionFile = if withVersionFile then "1" else "0";
      sw = mkSystemPath { inherit version revision pkgs; };
      stc = builtins.replaceStrings [ "@OUT@" ] [ (builtins.placeholder "out") ]
        (stcScript stcExit stcExtra);
    };

  # mkSystem: the public constructor.  Returns { config = { ... }; } like
  # `nixpkgs.lib.nixosSystem` does (only the attributes crebuild uses).
  mkSystem =
    { name
    , version ? "26.05.test-${name}"
    , revision ? "rev-${name}"          # null: --configuration-revision fails
    , pkgs ? with packages; [ hello_2_12 jq_1_6 tree_2_1_0 ]
    , kernel ? defaultKernel
    , specialisations ? { }             # name -> mkSystem argument set (minus name)
    , stcExit ? 0                       # exit status of switch-to-configuration
    , withVersionFile ? true            # false: no $out/nixos-version
    , stcExtra ? ""                     # shell run by stc on switch/test
    }:
    let
      specToplevels = builtins.mapAttrs
        (sn: sa: (mkSystem ({ name = "${name}-${sn}"; } // sa)).config.system.build.toplevel)
        specialisations;
      toplevel = mkToplevel {
        inherit name version revision pkgs kernel stcExit withVersionFile stcExtra;
        specialisations = specToplevels;
      };
      mkVm = variant:
        mkDrv "nixos-vm" ''
          set -e
          mkdir -p "$out/bin"
          ln -s "$toplevel" "$out/system"
          printf '#!/bin/sh\necho "fake %s VM for %s (%s)"\n' "$variant" "$host" "$toplevel" \
            > "$out/bin/run-$host-vm"
          chmod 0555 "$out/bin/run-$host-vm"
        '' { inherit toplevel variant; host = name; };
      mkImage = variant: filePath:
        let
          drv = mkDrv "nixos-image-${variant}-${version}-${system}" ''
            set -e
            mkdir -p "$out/$(dirname "$filePath")"
            echo "fake $variant image of $toplevel" > "$out/$filePath"
          '' { inherit toplevel variant filePath; };
        in
        drv // { inherit filePath; passthru = { inherit filePath; }; };
    in
    {
      config = {
        networking.hostName = name;
        nixpkgs.system = system;
        system.nixos.version = version;
        system.build = {
          inherit toplevel;
          vm = mkVm "plain";
          vmWithBootLoader = mkVm "bootloader";
          images = {
            qcow2 = mkImage "qcow2" "nixos.qcow2";
            iso = mkImage "iso" "iso/nixos.iso";
          };
        };
      };
    };
in
{
  inherit mkSystem mkPackage mkKernel packages system;
}
