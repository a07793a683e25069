# From socket() to Server: every command the book needs.
#
#   make serve   build the site and serve it on http://127.0.0.1:8000
#   make test    every test: formatting, vet, a macOS cross-build, the
#                programs' tests and transcripts, their shape (tools/programs),
#                the proof of every exercise grader against the solution and
#                the wrong solutions (tools/grade), the generator's tests,
#                and the check that site/ is current
#
# Chapter order, titles and programs come from chapters/; nothing here lists them.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve site test deps fmt vet darwin check staticcheck update bench exercise class

serve:
	$(GO) run ./tools/book serve

site:
	$(GO) run ./tools/book build

test: deps fmt vet darwin
	$(GO) test ./...

# What the tests need beyond Go, from Debian's packages: Chromium for the
# browser tests, ss, ip and nstat (iproute2) for the socket-state checks,
# patch for the graders' wrong solutions, and what the chapters' "see it
# yourself" commands call, which the tests run as written: strace, nc
# (netcat-openbsd), pgrep (procps) and unshare (util-linux).
deps:
	@need=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="$$need chromium"; \
	command -v ss >/dev/null 2>&1 || need="$$need iproute2"; \
	command -v patch >/dev/null 2>&1 || need="$$need patch"; \
	command -v strace >/dev/null 2>&1 || need="$$need strace"; \
	command -v nc >/dev/null 2>&1 || need="$$need netcat-openbsd"; \
	command -v pgrep >/dev/null 2>&1 || need="$$need procps"; \
	command -v unshare >/dev/null 2>&1 || need="$$need util-linux"; \
	if [ -n "$$need" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$need (Debian packages the tests use)"; \
	    $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need; \
	  else \
	    echo "not installed:$$need; the tests that need them will say so"; \
	  fi; \
	fi

# gofmt finds nothing to change.
fmt:
	@files=$$(gofmt -l code tools); if [ -n "$$files" ]; then echo "gofmt would change:"; echo "$$files"; exit 1; fi

vet:
	$(GO) vet ./...

# Programs that need Linux carry build constraints; the rest must build for macOS.
darwin:
	GOOS=darwin $(GO) build ./...
	GOOS=darwin $(GO) vet ./code/...

staticcheck:
	$(GO) run $(STATICCHECK) ./...

check: fmt vet darwin staticcheck

# Re-record the transcripts the book shows, after changing a program.
update:
	$(GO) test ./code/... -update

# How long a full build of the site takes.
bench:
	$(GO) test -run '^$$' -bench Build -benchtime 20x ./tools/book

# Grade your work on a chapter's exercises: make exercise CH=05
# (PROGRAM=DIR grades a copy of the program in DIR instead of code/NN-slug,
# e.g. PROGRAM=05-mine after cp -r code/05-accept 05-mine). Only the graders
# in code/NN-slug/grade run; the wrong solutions in grade/wrong/ are for
# go test ./tools/grade.
exercise:
	@test -n "$(CH)" || { echo "usage: make exercise CH=NN [PROGRAM=DIR]"; exit 2; }
	$(GO) run ./tools/grade $(if $(PROGRAM),-program $(PROGRAM)) $(CH)

# Grade a class: one folder per student in DIR, one line per student.
class:
	@test -n "$(CH)" -a -n "$(DIR)" || { echo "usage: make class CH=NN DIR=submissions"; exit 2; }
	$(GO) run ./tools/grade -class $(DIR) $(CH)
