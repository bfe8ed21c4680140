# bash completion for crebuild(8), also used for nixos-rebuild when that is
# crebuild.  Works with and without the bash-completion package.
# The option list must match src/cli.c (tests/unit/test_cli.c checks it).

_crebuild()
{
    local cur prev words cword split=false
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*}
            cur=${cur#*=}
            split=true
        fi
    fi

    local actions='switch boot test build dry-build dry-run dry-activate
        edit repl build-vm build-vm-with-bootloader build-image
        list-generations'

    local opts='--accept-flake-config --ask-elevate-password
        --ask-sudo-password --attr --build-host --builders --commit-lock-file
        --confirm-timeout --cores --debug --diff --elevate --events --fallback
        --fast --file --flake --health-check --health-check-cmd
        --health-timeout --help --image-variant --impure --include
        --install-bootloader --install-grub --json --keep-failed --keep-going
        --log-format --max-jobs --no-build-nix --no-build-output --no-flake
        --no-link --no-magic-rollback --no-net --no-progress --no-reexec
        --no-registries --no-ssh-tty --no-update-lock-file
        --no-write-lock-file --offline --option --override-input
        --print-build-logs --print-plan --profile-name --quiet
        --recreate-lock-file --refresh --repair --rollback --run0 --show-trace
        --specialisation --store-path --substitute-on-destination --sudo
        --sudo-password-fd --sudo-password-file --target-host --update-input
        --upgrade --upgrade-all --use-remote-sudo --use-substitutes --verbose
        --version
        -A -F -I -K -L -Q -S -c -f -h -j -k -p -s -v'

    case $prev in
    --target-host | --build-host)
        if declare -F _known_hosts_real >/dev/null; then
            _known_hosts_real -- "$cur"
        else
            local user=
            [[ $cur == *@* ]] && user=${cur%@*}@
            COMPREPLY=($(compgen -P "$user" -A hostname -- "${cur#*@}"))
        fi
        return
        ;;
    --file | -f | --events | --sudo-password-file | --store-path | \
        --include | -I)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --flake | -F)
        # The flake reference is optional: offer directories and actions.
        COMPREPLY=($(compgen -d -- "$cur") $(compgen -W "$actions" -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --elevate)
        COMPREPLY=($(compgen -W 'none sudo run0' -- "$cur"))
        return
        ;;
    --log-format)
        COMPREPLY=($(compgen -W 'raw internal-json bar bar-with-logs
            multiline multiline-with-logs' -- "$cur"))
        return
        ;;
    --attr | -A | --profile-name | -p | --specialisation | -c | \
        --image-variant | --max-jobs | -j | --cores | --builders | \
        --option | --update-input | --override-input | --confirm-timeout | \
        --health-check | --health-check-cmd | --health-timeout | \
        --sudo-password-fd)
        return # free-form value
        ;;
    esac
    $split && return

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return
    fi

    # Exactly one action: offer them until one is on the line.
    local w
    for w in "${words[@]:1:cword-1}"; do
        case " $actions " in
        *[[:space:]]"$w"[[:space:]]*) return ;;
        esac
    done
    COMPREPLY=($(compgen -W "$actions" -- "$cur"))
}

complete -F _crebuild crebuild nixos-rebuild
