//go:build linux

// The files: from a request's path to an open descriptor that is surely
// under the root, what is known of it (size, time, type, tag), and the
// cache that keeps small files' bytes so that most answers need no file
// system call at all.

package main

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const (
	smallFile = 64 << 10    // files up to this size are sent from memory, larger ones with sendfile
	cacheMax  = 64 << 20    // the most bytes of files a loop keeps
	revalid   = time.Second // how long a cached file is trusted before it is looked at again
)

// entry is what a loop knows of one file.
type entry struct {
	size    int64
	mtime   time.Time
	etag    string // "mtime-size", in hexadecimal: changes when either does
	lastMod string
	ctype   string
	body    []byte // the file's bytes, for a small file; nil for a large one
	checked time.Time
}

// openRoot opens the served directory once, O_PATH: a handle for naming
// things under it, which nothing can read through.
func openRoot(n narrator, dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	n.call(fmt.Sprintf("open(%q, O_PATH|O_DIRECTORY|O_CLOEXEC)", dir), strconv.Itoa(fd), err)
	if err != nil {
		return -1, os.NewSyscallError("open -root "+dir, err)
	}
	return fd, nil
}

// region clean
// clean turns a request's path into a name relative to the root, or says
// why it will not: the path is percent-decoded once (a %252e stays the
// three characters %2e, a name like any other), and a decoded path with a
// NUL byte or a ".." segment is refused outright. That is the first wall;
// openat2 is the second, and the one that holds.
func clean(p string) (string, int) {
	if strings.IndexByte(p, '%') >= 0 {
		b := make([]byte, 0, len(p))
		for i := 0; i < len(p); i++ {
			if p[i] != '%' {
				b = append(b, p[i])
				continue
			}
			v, err := strconv.ParseUint(p[i+1:min(i+3, len(p))], 16, 8)
			if err != nil || i+3 > len(p) {
				return "", 400
			}
			b, i = append(b, byte(v)), i+2
		}
		p = string(b)
	}
	if strings.IndexByte(p, 0) >= 0 || !strings.HasPrefix(p, "/") {
		return "", 400
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." {
			return "", 400
		}
	}
	return p, 0
}

// endregion clean

// region open
// open opens name under the root with openat2. RESOLVE_BENEATH makes the
// kernel refuse (EXDEV) any step of the walk that would leave the root:
// a "..", an absolute symbolic link, a relative one that climbs out,
// however the name was spelled and whatever a link was changed into
// since the server last looked. RESOLVE_NO_MAGICLINKS refuses the links
// of /proc, which lead anywhere. Links that stay under the root work.
// (Go's os.Root does the same walk, with openat2 where it can; this
// program wants the raw descriptor, for fstat and sendfile.)
func (l *loop) open(name string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	rel := "." + name // "/a/b" is "./a/b", under the root
	fd, err := unix.Openat2(l.root, rel, &how)
	if !l.n.quiet || err != nil && !errors.Is(err, unix.ENOENT) {
		l.n.call(fmt.Sprintf("openat2(%d, %q, {O_RDONLY|O_CLOEXEC, RESOLVE_BENEATH|RESOLVE_NO_MAGICLINKS})", l.root, rel),
			strconv.Itoa(fd), err)
	}
	return fd, err
}

// endregion open

// region lookup
// lookup finds what to send for a path: the entry and, for a large
// file, its open descriptor (-1 for a small one, whose bytes are in the
// entry). A cached entry is trusted for revalid, then looked at again
// (open, fstat): a file changed since is read again. A status other than
// 0 is the answer instead: 404, 403, or 301 to the directory's own path.
func (l *loop) lookup(p string, now time.Time) (*entry, int, int) {
	e := l.cache[p]
	if e != nil && now.Sub(e.checked) < revalid {
		return e, -1, 0
	}
	name, status := clean(p)
	if status != 0 {
		return nil, -1, status
	}
	fd, err := l.open(name)
	switch {
	case err == nil:
	case e != nil && (errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE)):
		return e, -1, 0 // no descriptor to look with: what is cached will do
	case errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE):
		return nil, -1, 503
	default:
		l.forget(p) // if it was there
		return nil, -1, openStatus(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		closeFD(l.n, fd)
		return nil, -1, 500
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		closeFD(l.n, fd)
		if !strings.HasSuffix(p, "/") {
			return nil, -1, 301 // its relative links need the slash
		}
		e, fd, status := l.lookup(p+"index.html", now)
		if status == 0 && e.body != nil {
			l.cache[p] = e // "/" is "/index.html" until that is looked at again
		}
		return e, fd, status
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		closeFD(l.n, fd)
		return nil, -1, 404
	}
	// region cache
	mtime := time.Unix(st.Mtim.Unix())
	if e != nil && e.body != nil && e.mtime.Equal(mtime) && e.size == st.Size {
		closeFD(l.n, fd) // unchanged: trust it for revalid more
		e.checked = now
		return e, -1, 0
	}
	e = &entry{size: st.Size, mtime: mtime, checked: now, ctype: contentType(name),
		etag:    `"` + strconv.FormatInt(mtime.UnixNano(), 16) + "-" + strconv.FormatInt(st.Size, 16) + `"`,
		lastMod: mtime.UTC().Format(httpTime)}
	if st.Size > smallFile || l.cached+int(st.Size) > cacheMax {
		l.forget(p)
		return e, fd, 0
	}
	e.body = make([]byte, st.Size)
	got, err := unix.Pread(fd, e.body, 0)
	closeFD(l.n, fd)
	if err != nil || int64(got) != st.Size {
		return nil, -1, 500 // changed while read: the next request tries again
	}
	l.forget(p)
	l.cache[p], l.cached = e, l.cached+len(e.body)
	return e, -1, 0
}

// endregion cache

// endregion lookup

// forget takes p's entry out of the cache. A directory's path ("/docs/")
// names its index.html's entry, counted under that name, not this one.
func (l *loop) forget(p string) {
	if e := l.cache[p]; e != nil && !strings.HasSuffix(p, "/") {
		l.cached -= len(e.body)
	}
	delete(l.cache, p)
}

// openStatus is the answer to a path that would not open. A path that
// leads out of the root is answered as one that does not exist: the
// client learns nothing of what lies outside.
func openStatus(err error) int {
	switch {
	case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
		return 403
	default: // ENOENT, ENOTDIR, EXDEV (out of the root), ELOOP, ENAMETOOLONG
		return 404
	}
}

// types are the Content-Types of the files a site holds, by extension.
// The system's table (/etc/mime.types) differs between machines; a
// server's answers should not.
var types = map[string]string{
	".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
	".js": "text/javascript; charset=utf-8", ".json": "application/json",
	".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg", ".gif": "image/gif",
	".ico": "image/vnd.microsoft.icon", ".webp": "image/webp", ".woff2": "font/woff2",
	".txt": "text/plain; charset=utf-8", ".xml": "application/xml", ".pdf": "application/pdf",
	".wasm": "application/wasm", ".md": "text/markdown; charset=utf-8", ".epub": "application/epub+zip",
}

func contentType(name string) string {
	if t, ok := types[strings.ToLower(path.Ext(name))]; ok {
		return t
	}
	return "application/octet-stream"
}
