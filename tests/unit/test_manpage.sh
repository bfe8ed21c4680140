#!/bin/sh
# test_manpage.sh: man/crebuild.8 renders without a single groff or man
# warning, and the completion files parse in their shells.  Run from the
# repository root (or pass it as $1).  Checks whose tool is missing are
# skipped, not failed.  (Option coverage is checked by test_cli.c.)
set -u
cd "${1:-.}" || exit 1

fail=0
ok() { printf 'ok   %s\n' "$1"; }
bad() { printf 'FAIL %s\n' "$1"; fail=1; }
skip() { printf 'skip %s (%s not installed)\n' "$1" "$2"; }
have() { command -v "$1" >/dev/null 2>&1; }

page=man/crebuild.8

if have groff; then
    out=$(groff -ww -man -z "$page" 2>&1)
    if [ -z "$out" ]; then ok "groff -ww -man -z"; else
        bad "groff -ww -man -z"; printf '%s\n' "$out"; fi
else
    skip "groff -ww -man -z" groff
fi

if have man; then
    out=$(MANWIDTH=80 LC_ALL=C.UTF-8 man --warnings -l "$page" 2>&1 >/dev/null)
    if [ -z "$out" ]; then ok "man --warnings -l"; else
        bad "man --warnings -l"; printf '%s\n' "$out"; fi
    # No hyphenated line ends: option names must stay copy-pastable.
    if MANWIDTH=80 LC_ALL=C.UTF-8 man -l "$page" 2>/dev/null |
        grep -q -e '‐$' -e '-$'; then
        bad "no hyphenation in the rendered page"
    else
        ok "no hyphenation in the rendered page"
    fi
else
    skip "man --warnings -l" man
fi

if have lexgrog; then
    if lexgrog "$page" | grep -q 'crebuild - '; then ok "lexgrog NAME"; else
        bad "lexgrog NAME"; fi
else
    skip "lexgrog NAME" lexgrog
fi

if bash -n completions/crebuild.bash; then ok "bash -n"; else bad "bash -n"; fi

# The bash completion completes actions and options without bash-completion.
out=$(bash -c '. completions/crebuild.bash
    COMP_WORDS=(crebuild --elevate=r); COMP_CWORD=1; _crebuild
    printf "%s " "${COMPREPLY[@]}"
    COMP_WORDS=(crebuild dry-a); COMP_CWORD=1; _crebuild
    printf "%s " "${COMPREPLY[@]}"
    COMP_WORDS=(crebuild --no-f); COMP_CWORD=1; _crebuild
    printf "%s" "${COMPREPLY[@]}"' 2>&1)
if [ "$out" = "run0 dry-activate --no-flake" ]; then ok "bash completion"
else bad "bash completion: got '$out'"; fi

if have zsh; then
    if zsh -n completions/_crebuild; then ok "zsh -n"; else bad "zsh -n"; fi
else
    skip "zsh -n" zsh
fi

if have fish; then
    if fish --no-execute completions/crebuild.fish; then ok "fish --no-execute"
    else bad "fish --no-execute"; fi
    out=$(fish -c 'source completions/crebuild.fish
        complete -C"crebuild dry-a"; complete -C"crebuild --elevate="' 2>&1 |
        cut -f1 | tr '\n' ' ')
    case $out in
    "dry-activate --elevate=none --elevate=run0 --elevate=sudo ") ok "fish completion" ;;
    *) bad "fish completion: got '$out'" ;;
    esac
else
    skip "fish --no-execute" fish
fi

exit $fail
