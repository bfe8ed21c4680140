# fish completion for crebuild(8), also used for nixos-rebuild when that is
# crebuild.  The option list must match src/cli.c (tests/unit/test_cli.c
# checks it).

set -l actions switch boot test build dry-build dry-run dry-activate edit repl build-vm build-vm-with-bootloader build-image list-generations
set -l no_action "not __fish_seen_subcommand_from $actions"

complete -c crebuild -f

# Actions (exactly one).
complete -c crebuild -n $no_action -a switch -d 'Build, activate and make it the boot default'
complete -c crebuild -n $no_action -a boot -d 'Build and make it the boot default'
complete -c crebuild -n $no_action -a test -d 'Build and activate, not added to the boot menu'
complete -c crebuild -n $no_action -a build -d 'Build only, leave ./result'
complete -c crebuild -n $no_action -a dry-build -d 'Show what would be built or fetched'
complete -c crebuild -n $no_action -a dry-run -d 'Same as dry-build'
complete -c crebuild -n $no_action -a dry-activate -d 'Build, show what activation would change'
complete -c crebuild -n $no_action -a edit -d 'Open the configuration in an editor'
complete -c crebuild -n $no_action -a repl -d 'Open the configuration in nix repl'
complete -c crebuild -n $no_action -a build-vm -d 'Build a QEMU virtual machine script'
complete -c crebuild -n $no_action -a build-vm-with-bootloader -d 'Same, booting through the boot loader'
complete -c crebuild -n $no_action -a build-image -d 'Build a disk image (--image-variant)'
complete -c crebuild -n $no_action -a list-generations -d 'List the generations'

# nixos-rebuild's options.
complete -c crebuild -s h -l help -d 'Show the manual page'
complete -c crebuild -l version -d 'Print the version'
complete -c crebuild -l debug -d 'Debug logging of crebuild itself'
complete -c crebuild -l json -d 'JSON output (list-generations)'
complete -c crebuild -l diff -d 'Show the closure diff against the running system'
complete -c crebuild -s F -l flake -r -a '(__fish_complete_directories)' -d 'Build from a flake (REF optional, default .)'
complete -c crebuild -l no-flake -d 'Do not use /etc/nixos/flake.nix'
complete -c crebuild -s f -l file -r -F -d 'Build the system from a file'
complete -c crebuild -s A -l attr -x -d 'Attribute path in the file'
complete -c crebuild -s p -l profile-name -x -d 'Use profile system-profiles/NAME'
complete -c crebuild -s c -l specialisation -x -d 'Activate a specialisation'
complete -c crebuild -l image-variant -x -d 'Image variant for build-image'
complete -c crebuild -l store-path -r -F -d 'Deploy a prebuilt system closure'
complete -c crebuild -l rollback -d 'Go back to the previous generation'
complete -c crebuild -l install-bootloader -d '(Re)install the boot loader'
complete -c crebuild -l upgrade -d "Update root's nixos channel first"
complete -c crebuild -l upgrade-all -d "Update all of root's channels first"
complete -c crebuild -l no-reexec -d 'Accepted; crebuild never re-executes itself'
complete -c crebuild -l build-host -x -a '(__fish_complete_user_at_hosts)' -d 'Build on HOST over ssh'
complete -c crebuild -l target-host -x -a '(__fish_complete_user_at_hosts)' -d 'Activate on HOST over ssh'
complete -c crebuild -l elevate -x -a 'none sudo run0' -d 'Privilege elevation method'
complete -c crebuild -l sudo -d 'Same as --elevate=sudo'
complete -c crebuild -l run0 -d 'Same as --elevate=run0'
complete -c crebuild -s S -l ask-elevate-password -d 'Prompt for the elevation password'
complete -c crebuild -l ask-sudo-password -d 'Same as --sudo --ask-elevate-password'

# Deprecated, accepted with a warning.
complete -c crebuild -l use-remote-sudo -d 'Deprecated: same as --sudo'
complete -c crebuild -l install-grub -d 'Deprecated: same as --install-bootloader'
complete -c crebuild -l fast -d 'Deprecated: same as --no-reexec'
complete -c crebuild -l no-ssh-tty -d 'Deprecated: no effect'
complete -c crebuild -l no-build-nix -d 'Deprecated: no effect'

# Passed through to nix.
complete -c crebuild -s v -l verbose -d 'More output (repeatable)'
complete -c crebuild -l quiet -d 'Less output (repeatable)'
complete -c crebuild -s j -l max-jobs -x -d 'Maximum number of parallel builds'
complete -c crebuild -l cores -x -d 'CPU cores per build'
complete -c crebuild -l log-format -x -a 'raw internal-json bar bar-with-logs multiline multiline-with-logs' -d 'Nix log format'
complete -c crebuild -s k -l keep-going -d 'Keep going when some builds fail'
complete -c crebuild -s K -l keep-failed -d 'Keep failed build directories'
complete -c crebuild -l fallback -d 'Build from source when substitution fails'
complete -c crebuild -l repair -d 'Repair corrupted store paths'
complete -c crebuild -l option -x -d 'Set a Nix option: NAME VALUE'
complete -c crebuild -s I -l include -r -F -d 'Add to the Nix search path'
complete -c crebuild -l builders -x -d 'Ad-hoc remote builders'
complete -c crebuild -s L -l print-build-logs -d 'Print full build logs'
complete -c crebuild -l show-trace -d 'Show evaluation traces on errors'
complete -c crebuild -s Q -l no-build-output -d 'Silence build output'
complete -c crebuild -l no-link -d 'Same as --no-build-output'
complete -c crebuild -l offline -d 'No substituters, no downloads if avoidable'
complete -c crebuild -l no-net -d 'No network access at all'
complete -c crebuild -l accept-flake-config -d "Trust the flake's nixConfig"
complete -c crebuild -l refresh -d 'Refetch cached flake inputs'
complete -c crebuild -l impure -d 'Allow impure evaluation'
complete -c crebuild -l recreate-lock-file -d 'Recreate flake.lock'
complete -c crebuild -l no-update-lock-file -d 'Fail if flake.lock is out of date'
complete -c crebuild -l no-write-lock-file -d 'Do not write flake.lock'
complete -c crebuild -l no-registries -d 'Do not use flake registries'
complete -c crebuild -l commit-lock-file -d 'Commit changes to flake.lock'
complete -c crebuild -l update-input -x -d 'Update one flake input'
complete -c crebuild -l override-input -x -d 'Override a flake input: INPUT URL'
complete -c crebuild -s s -l use-substitutes -d 'Let the destination substitute'
complete -c crebuild -l substitute-on-destination -d 'Same as --use-substitutes'

# crebuild's own.
complete -c crebuild -l print-plan -d 'Print the steps, run nothing'
complete -c crebuild -l no-magic-rollback -d 'Do not roll back when the target cannot confirm'
complete -c crebuild -l confirm-timeout -x -d 'Seconds to wait for confirmation'
complete -c crebuild -l health-check -x -d 'GET URL after activation, want 2xx'
complete -c crebuild -l health-check-cmd -x -d 'Run CMD on the target after activation'
complete -c crebuild -l health-timeout -x -d 'Seconds allowed for health checks'
complete -c crebuild -l events -r -F -d 'Write JSON-lines progress events'
complete -c crebuild -l no-progress -d 'Never draw the progress line'
complete -c crebuild -l sudo-password-fd -x -d 'Read the elevation password from fd N'
complete -c crebuild -l sudo-password-file -r -F -d 'Read the elevation password from PATH'

complete -c nixos-rebuild -w crebuild
