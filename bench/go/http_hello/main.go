// Hello-world on Go's net/http, for wrk: `http_hello [ADDR]`.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:8082"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go net/http hello on http://%s/\n", ln.Addr())
	hello := []byte("Hello, World!\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(hello)
	})
	log.Fatal(http.Serve(ln, h))
}
