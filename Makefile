# From socket() to Server: every command the book needs.
#
#   make serve   build the site and serve it on http://127.0.0.1:8000
#   make site    build site/ (the pages, the single-page edition, the EPUB),
#                then print the PDF into it with Chromium when it is installed
#   make pdf     print site/socket-to-server.pdf from the single-page edition
#   make test    every test: formatting, vet, a macOS cross-build, the
#                programs' tests and transcripts, their shape (tools/programs),
#                the proof of every exercise grader against the solution and
#                the wrong solutions (tools/grade), the generator's tests (the EPUB
#                through epubcheck, the PDF's structure),
#                the check that site/ is current, and a bounded fuzz run of
#                chapter 19's HTTP parser
#
# Chapter order, titles and programs come from chapters/; nothing here lists them.

GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
SUDO        := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: serve site pdf test deps fmt vet darwin check staticcheck update bench bench-unix bench-servers bench-http exercise class

# The preview: make serve [ADDR=127.0.0.1:8001] (127.0.0.1:8000 by default).
# The generator is built into BOOK and run as make's own child, not under go
# run: stopped by Ctrl-C, go run exits 1 even when the program it runs exits
# 0, and make then prints "make: *** [serve] Error 1". The server exits 0 on
# Ctrl-C and on the SIGTERM make passes on, so make prints nothing; make
# itself then ends by that signal, as make always does (status 130 on Ctrl-C).
serve: BOOK = $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/socket-to-server/book
serve:
	$(GO) build -o "$(BOOK)" ./tools/book
	exec "$(BOOK)" serve $(if $(ADDR),-addr $(ADDR))

# The site, then its PDF printed by Chromium when it is installed (without
# it, site/ keeps the PDF it has, linked: the build never touches it). The
# PDF is printed again only when the book it was printed from changed: the
# same book prints to other bytes each time (Chromium's dates and ids).
site:
	$(GO) run ./tools/book build
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || command -v google-chrome >/dev/null 2>&1; then \
	  $(GO) run ./tools/book pdf; \
	else \
	  echo "Chromium is not installed: site/socket-to-server.pdf not printed (apt-get install chromium, then make pdf)"; \
	fi

# The PDF edition: book.html printed by headless Chromium into
# site/socket-to-server.pdf, then the site built again so that every page
# links it with its size. About 25 s.
pdf:
	$(GO) run ./tools/book pdf

# tools/grade and tools/book, the longest packages, are named first: go test
# starts packages in the order given, two at a time on two cores, so those
# two start at once and the chapters' packages fill the slot the first to
# finish leaves. (-p 4 was no faster: the two are CPU-bound.) After
# the tests, chapter 19's HTTP parser is fuzzed for a bounded time from its
# seed corpus (code/19-http/testdata/fuzz); a failing input is saved there
# and fails the run. -vet=off: go test would run a subset of the checks
# make vet has just run on every package, seconds of CPU for nothing new.
test: deps fmt vet darwin
	$(GO) test -vet=off ./tools/grade ./tools/book ./...
	$(GO) test -vet=off -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10s ./code/19-http

# What the tests need beyond Go, from Debian's packages: Chromium for the
# browser tests, ss, ip and nstat (iproute2) for the socket-state checks,
# patch for the graders' wrong solutions, and what the chapters' "see it
# yourself" commands call, which the tests run as written: strace, nc
# (netcat-openbsd), pgrep (procps), unshare (util-linux) and curl; epubcheck
# (and the Java it runs on) to validate the EPUB, and poppler-utils
# (pdftotext, pdfimages) to read the PDF.
deps:
	@need=""; \
	command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need="$$need chromium"; \
	command -v ss >/dev/null 2>&1 || need="$$need iproute2"; \
	command -v patch >/dev/null 2>&1 || need="$$need patch"; \
	command -v strace >/dev/null 2>&1 || need="$$need strace"; \
	command -v nc >/dev/null 2>&1 || need="$$need netcat-openbsd"; \
	command -v pgrep >/dev/null 2>&1 || need="$$need procps"; \
	command -v unshare >/dev/null 2>&1 || need="$$need util-linux"; \
	command -v curl >/dev/null 2>&1 || need="$$need curl"; \
	command -v epubcheck >/dev/null 2>&1 || need="$$need epubcheck"; \
	command -v pdftotext >/dev/null 2>&1 || need="$$need poppler-utils"; \
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

# Unix domain sockets against TCP on loopback, side by side in one run
# (chapter 10): round-trip latency and throughput, and their ratio.
bench-unix:
	$(GO) test -run '^$$' -bench . ./code/10-unix

# Every server of Parts I and III under the same loads, on this machine
# (chapter 18): requests per second, the server's CPU time per request,
# p50 and p99 latency, and memory and threads per idle connection, with
# the machine named above the table. The servers run on CPU 0 and the
# load generator on CPU 1 when there are two. About 100 s on 2 cores.
bench-servers:
	$(GO) run ./code/18-measure -q

# The book's capstone against nginx and net/http's FileServer, side by side
# in one run on this book's site/ and a 1 KiB and a 1 MiB file: requests
# per second, p50/p99 latency and server CPU time per request at 1, 100 and
# 1,000 keep-alive connections, and memory per idle connection at 10,000.
# Each server is pinned to one CPU and wrk to another. nginx's configuration
# is tools/benchhttp/nginx.conf. ARGS="-d 1s -servers nginx,net/http" for
# a shorter run; go run ./tools/benchhttp -h lists the options.
bench-http: site
	@need=""; \
	command -v nginx >/dev/null 2>&1 || need="$$need nginx"; \
	command -v wrk >/dev/null 2>&1 || need="$$need wrk"; \
	if [ -n "$$need" ]; then \
	  echo "installing$$need (Debian packages the benchmark uses)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$need; \
	fi
	$(GO) run ./tools/benchhttp $(ARGS)

# Grade your work on a chapter's exercises: make exercise CH=05
# (PROGRAM=DIR grades a copy of the program in DIR instead of code/NN-slug,
# e.g. PROGRAM=05-mine after cp -r code/05-accept 05-mine; EX=2 grades
# exercise 2 only; V=1 shows all a failing grader said, not its first line).
# Only the graders in code/NN-slug/grade run; the wrong solutions in
# grade/wrong/ are for go test ./tools/grade. A report with failing
# exercises is not an error: make exits 0 after it, and only when the
# grader could not grade (a wrong CH, graders that do not compile) does it
# fail. Scripts that want a status run go run ./tools/grade, which exits 1
# when an exercise fails.
exercise:
	@test -n "$(CH)" || { echo "usage: make exercise CH=NN [PROGRAM=DIR] [EX=N] [V=1]"; exit 2; }
	@$(GO) run ./tools/grade -status=false $(if $(PROGRAM),-program $(PROGRAM)) $(if $(EX),-ex $(EX)) $(if $(V),-v) $(CH)

# Grade a class: one folder per student in DIR (or a symbolic link to one),
# one line per student with the reason for each failure; FORMAT=csv prints
# a CSV for a gradebook instead (student, score, graded, one column per
# exercise, reason). Students are graded in parallel, one per core; each
# in namespaces of its own where the system allows (see tools/grade's
# sandbox.go), within TIMEOUT (default 2m) each.
class:
	@test -n "$(CH)" -a -n "$(DIR)" || { echo "usage: make class CH=NN DIR=submissions [FORMAT=csv] [EX=N] [TIMEOUT=2m]"; exit 2; }
	@$(GO) run ./tools/grade -class $(DIR) $(if $(FORMAT),-format $(FORMAT)) $(if $(EX),-ex $(EX)) $(if $(TIMEOUT),-timeout $(TIMEOUT)) $(CH)
