# crebuild: a drop-in replacement for nixos-rebuild, in C.
#   make            build ./crebuild
#   make check      unit tests, then integration tests (root: real hosts)
#   make sanitize   the whole suite built with ASan+UBSan
#   make valgrind   unit tests under valgrind
#   make install    PREFIX=/usr/local DESTDIR=
#   make bench      crebuild against OpenSSH + nix-copy-closure
#   make fuzz       libFuzzer targets (clang)

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
DATADIR ?= $(PREFIX)/share
VERSION := 0.1.0

CC      ?= cc
PKGS    := libssh libcurl libcjson libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
CMOCKA_LIBS := $(shell pkg-config --libs cmocka)

WERROR  ?= -Werror
WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wformat=2 -Wstrict-prototypes \
           -Wmissing-prototypes -Wold-style-definition -Wpointer-arith \
           -Wcast-qual -Wwrite-strings -Wvla -Wimplicit-fallthrough \
           -Wnull-dereference -Wno-format-nonliteral $(WERROR)
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
OPT     ?= -O2 -g
CPPFLAGS += -std=c11 -D_GNU_SOURCE -Iinclude -DCR_VERSION='"$(VERSION)"'
CFLAGS  += $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS)
LDFLAGS += -pie -Wl,-z,relro,-z,now

B       ?= build
LIB_SRC := $(filter-out src/main.c,$(wildcard src/*.c))
LIB_OBJ := $(LIB_SRC:src/%.c=$(B)/%.o)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
UNIT_HDRS := $(wildcard tests/unit/*.h)
HDRS    := $(wildcard include/crebuild/*.h)

all: crebuild

crebuild: $(B)/crebuild
	cp $(B)/crebuild $@

$(B)/crebuild: $(B)/main.o $(B)/libcrebuild.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/libcrebuild.a: $(LIB_OBJ)
	rm -f $@; ar rcs $@ $^

$(B)/%.o: src/%.c $(HDRS) | $(B)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(UNIT_HDRS) $(B)/libcrebuild.a $(HDRS) | $(B)
	@mkdir -p $(B)/tests
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< \
	    $(B)/libcrebuild.a $(PKG_LIBS) $(CMOCKA_LIBS)

$(B):
	mkdir -p $(B)

unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do \
	    $(UNIT_WRAP) ./$$t || fail=1; done; \
	exit $$fail

integration: crebuild
	CREBUILD=$(CURDIR)/$(B)/crebuild tests/integration/run.sh

check: unit integration

# The whole suite (unit and integration) with ASan+UBSan in its own tree.
# Sanitizer reports go to files in $(SAN_LOG), not to stderr (tests compare
# stderr); any report fails the run, whatever the tests said, except
# LeakSanitizer's note that it cannot run under ptrace (a test runs crebuild
# under strace).  A small quarantine keeps ASan's memory overhead within the
# tests' RSS bounds.
SAN_LOG := $(CURDIR)/build-san/reports
SAN_ASAN := detect_leaks=1:abort_on_error=0:quarantine_size_mb=1:thread_local_quarantine_size_kb=64:log_path=$(SAN_LOG)/asan
SAN_UBSAN := halt_on_error=1:print_stacktrace=1:log_path=$(SAN_LOG)/ubsan
sanitize:
	@rm -rf $(SAN_LOG); mkdir -p $(SAN_LOG); chmod 1777 $(SAN_LOG)
	@st=0; $(MAKE) B=build-san OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    LDFLAGS="-fsanitize=address,undefined" HARDEN= \
	    ASAN_OPTIONS=$(SAN_ASAN) UBSAN_OPTIONS=$(SAN_UBSAN) \
	    CR_SSHRUN_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	    build-san/crebuild unit integration || st=$$?; \
	n=0; for f in $(SAN_LOG)/*; do [ -e "$$f" ] || continue; \
	    if ! grep -qv -e 'LeakSanitizer has encountered a fatal error' -e '^==[0-9]*==HINT' "$$f"; then \
	        echo "sanitize: ignoring $$f (LeakSanitizer under ptrace)"; continue; fi; \
	    echo "sanitizer report $$f:"; cat "$$f"; n=$$((n + 1)); st=1; done; \
	echo "sanitize: $$n sanitizer reports"; exit $$st

# ThreadSanitizer on the whole integration suite (crebuild has threads: the
# build while connecting, the copy's metadata, ProxyJump bridges).  Reports
# go to files; the RSS bounds of t_copy do not hold under TSan.
TSAN_LOG := $(CURDIR)/build-tsan/reports
tsan:
	@rm -rf $(TSAN_LOG); mkdir -p $(TSAN_LOG); chmod 1777 $(TSAN_LOG)
	@st=0; $(MAKE) B=build-tsan CC=clang OPT="-O1 -g -fsanitize=thread" \
	    LDFLAGS="-fsanitize=thread" HARDEN= \
	    TSAN_OPTIONS=log_path=$(TSAN_LOG)/tsan CR_TEST_NO_RSS=1 \
	    CR_SSHRUN_CFLAGS="-fsanitize=thread" \
	    CREBUILD=$(CURDIR)/build-tsan/crebuild \
	    build-tsan/crebuild integration || st=$$?; \
	n=0; for f in $(TSAN_LOG)/*; do [ -e "$$f" ] || continue; \
	    echo "tsan report $$f:"; cat "$$f"; n=$$((n + 1)); st=1; done; \
	echo "tsan: $$n reports"; exit $$st

valgrind:
	$(MAKE) B=build-vg OPT="-O0 -g" UNIT_WRAP="valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite" unit

# libFuzzer targets (tests/fuzz), each run FUZZ_SECONDS on its corpus.
FUZZ_SECONDS ?= 20
fuzz:
	tests/fuzz/build.sh run $(FUZZ_SECONDS)

install: crebuild
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(DATADIR)/bash-completion/completions \
	    $(DESTDIR)$(DATADIR)/zsh/site-functions \
	    $(DESTDIR)$(DATADIR)/fish/vendor_completions.d
	install -m 0755 crebuild $(DESTDIR)$(BINDIR)/crebuild
	install -m 0644 man/crebuild.8 $(DESTDIR)$(MANDIR)/man8/crebuild.8
	install -m 0644 completions/crebuild.bash $(DESTDIR)$(DATADIR)/bash-completion/completions/crebuild
	install -m 0644 completions/_crebuild $(DESTDIR)$(DATADIR)/zsh/site-functions/_crebuild
	install -m 0644 completions/crebuild.fish $(DESTDIR)$(DATADIR)/fish/vendor_completions.d/crebuild.fish
	@# NIXOS_REBUILD=1: also install as nixos-rebuild (a symlink)
	if [ "$(NIXOS_REBUILD)" = 1 ]; then ln -sf crebuild $(DESTDIR)$(BINDIR)/nixos-rebuild; fi

bench: crebuild
	bench/run.sh

format-check:
	clang-format --dry-run --Werror src/*.c include/crebuild/*.h tests/unit/*.c tests/unit/*.h

format:
	clang-format -i src/*.c include/crebuild/*.h tests/unit/*.c tests/unit/*.h

# Banned calls (see README "Code style").
lint:
	@! grep -nE '\b(sprintf|strcpy|strcat|atoi|atol|gets|system|popen|alloca)\(' src/*.c

clean:
	rm -rf build build-san build-tsan build-vg build-fuzz crebuild

.PHONY: all unit integration check sanitize tsan valgrind fuzz install bench format format-check lint clean
.SECONDARY:
