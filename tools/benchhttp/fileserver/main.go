// Command fileserver is make bench-http's net/http anchor: the standard
// library's FileServer on one directory, as a Go programmer would first
// write it, with nothing tuned.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
)

func main() {
	root := flag.String("root", ".", "the directory to serve")
	addr := flag.String("addr", "127.0.0.1:0", "the address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The harness reads the address from this line, as from every book program.
	fmt.Println("listening on", ln.Addr())
	log.Fatal(http.Serve(ln, http.FileServer(http.Dir(*root))))
}
