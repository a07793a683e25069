module github.com/socket-to-server/book

go 1.26.0

require (
	github.com/alecthomas/chroma/v2 v2.27.0
	github.com/yuin/goldmark v1.8.7
	golang.org/x/net v0.51.0
	golang.org/x/sys v0.49.0
)

require github.com/dlclark/regexp2/v2 v2.2.1 // indirect
