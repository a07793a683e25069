module github.com/socket-to-server/book

go 1.26.0
