// Command racy counts open connections the way a first try does: a plain
// int that every connection's goroutine changes, with nothing to order the
// changes. It usually prints the right numbers; go run -race shows why it
// is wrong anyway. Chapter 14's program uses an atomic.Int64 instead.
package main

import (
	"fmt"
	"sync"
)

func main() {
	var open int // shared by every goroutine, guarded by nothing
	var conns sync.WaitGroup
	for range 2 { // two connections, each served by a goroutine
		conns.Go(func() {
			open++ // read, add one, write back: three steps, not one
			fmt.Println("open connections:", open)
			open--
		})
	}
	conns.Wait()
}
