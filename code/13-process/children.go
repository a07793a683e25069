//go:build linux

// The parent's housekeeping for its children: ending them when it stops,
// and showing their output, each line marked with the child's process ID.

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// children are the parent's children still running, by process ID.
type children struct {
	mu   sync.Mutex
	live map[int]*exec.Cmd
	done sync.WaitGroup // one for each child not yet waited for
	kept []*os.File     // with -keep: the copies the parent did not close
}

// stop ends the children still running with SIGTERM, which they take as
// Ctrl-C, and waits for them all.
func (k *children) stop(n narrator) {
	k.mu.Lock()
	for pid, cmd := range k.live {
		// Hold the narrator, so that the child's answer comes after this.
		n.mu.Lock()
		err := cmd.Process.Signal(syscall.SIGTERM)
		if !errors.Is(err, os.ErrProcessDone) { // it ended by itself meanwhile
			n.print(fmt.Sprintf("kill(%d, SIGTERM)", pid), "0", err)
		}
		n.mu.Unlock()
	}
	k.mu.Unlock()
	k.done.Wait()
	for _, f := range k.kept {
		fd := f.Fd()
		n.call(fmt.Sprintf("close(%d)", fd), "0", f.Close())
	}
}

// prefixed writes a child's output, each line marked with its process ID,
// holding the narrator so that lines of different processes never mix.
type prefixed struct {
	n    narrator
	w    io.Writer
	pid  int
	part []byte // the start of a line whose end has not come yet
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			return len(b), nil
		}
		fmt.Fprintf(p.w, "[%d] %s", p.pid, p.part[:i+1])
		p.part = p.part[i+1:]
	}
}
