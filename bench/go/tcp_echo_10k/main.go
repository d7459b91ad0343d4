// tcp_echo_10k: 10,000 concurrent loopback TCP connections to one echo
// server in the same process (TCP_NODELAY on both ends). The main goroutine
// dials them one after another, never more than 128 ahead of the server's
// accepts (so the listen backlog never overflows and no SYN is dropped), and
// starts one client goroutine per connection; the server runs one goroutine
// per accepted connection. When every connection is dialled and accepted, a
// closed channel releases all clients at once; each does 10 round trips of a
// 64-byte message, checks every echo and closes. Timed from the first dial
// until every server goroutine has seen its client hang up; peak RSS over
// 10,000 connections gives the memory per connection.
// Counterpart of bench/src/bin/tcp_echo_10k.rs and tokio_tcp_echo_10k.rs.
package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	conns         = 10_000
	rounds        = 10
	msgSize       = 64
	maxUnaccepted = 128 // dialled connections the server may not have accepted yet
	// Two sockets per connection live in this process, plus a few others.
	fdsNeeded = 2*conns + 16
)

var (
	echoedBytes uint64 // bytes the server echoed, over all connections
	verified    uint64 // clients that checked all their echoes
)

// raiseNofile raises the soft open-file limit to the hard one. Go 1.19+ does
// this itself at start when package os is linked; doing it here keeps the
// program right on any version, and checks the result.
func raiseNofile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		panic(fmt.Sprintf("tcp_echo_10k: getrlimit: %v", err))
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: setrlimit: %v", err))
		}
	}
	if l.Cur < fdsNeeded {
		panic(fmt.Sprintf("tcp_echo_10k: the open-file limit is %d, this needs %d "+
			"(two sockets per connection); raise the hard limit (ulimit -Hn)", l.Cur, fdsNeeded))
	}
}

// serve echoes everything c sends until c closes.
func serve(c net.Conn, serving *sync.WaitGroup) {
	defer serving.Done()
	if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
		panic(fmt.Sprintf("tcp_echo_10k: server nodelay: %v", err))
	}
	buf := make([]byte, msgSize)
	var n uint64
	for {
		r, err := c.Read(buf)
		if r > 0 {
			if _, werr := c.Write(buf[:r]); werr != nil {
				panic(fmt.Sprintf("tcp_echo_10k: server write: %v", werr))
			}
			n += uint64(r)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: server read: %v", err))
		}
	}
	c.Close()
	atomic.AddUint64(&echoedBytes, n)
}

// fill writes client id's message for round r into msg.
func fill(msg []byte, id, r int) {
	for j := range msg {
		msg[j] = byte(id*7 + r*13 + j)
	}
}

// client waits for start, then does its round trips and checks each echo.
func client(id int, c net.Conn, start <-chan struct{}, clients *sync.WaitGroup) {
	defer clients.Done()
	msg := make([]byte, msgSize)
	back := make([]byte, msgSize)
	<-start
	for r := 0; r < rounds; r++ {
		fill(msg, id, r)
		if _, err := c.Write(msg); err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: client %d write: %v", id, err))
		}
		if _, err := io.ReadFull(c, back); err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: client %d read: %v", id, err))
		}
		if !bytes.Equal(back, msg) {
			panic(fmt.Sprintf("tcp_echo_10k: client %d round %d: echo differs", id, r))
		}
	}
	c.Close()
	atomic.AddUint64(&verified, 1)
}

func main() {
	raiseNofile()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("tcp_echo_10k: listen: %v", err))
	}
	addr := ln.Addr().String()

	// One token per dialled connection the server has not accepted yet.
	unaccepted := make(chan struct{}, maxUnaccepted)
	var accepted, serving, clients sync.WaitGroup
	accepted.Add(1)
	go func() {
		defer accepted.Done()
		for i := 0; i < conns; i++ {
			c, err := ln.Accept()
			if err != nil {
				panic(fmt.Sprintf("tcp_echo_10k: accept %d: %v", i, err))
			}
			<-unaccepted
			serving.Add(1)
			go serve(c, &serving)
		}
	}()

	start := make(chan struct{})
	t0 := time.Now()
	for id := 0; id < conns; id++ {
		unaccepted <- struct{}{}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: connect %d: %v", id, err))
		}
		if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
			panic(fmt.Sprintf("tcp_echo_10k: client nodelay: %v", err))
		}
		clients.Add(1)
		go client(id, c, start, &clients)
	}
	accepted.Wait()
	// Every connection is dialled and accepted: release all clients together.
	close(start)
	connected := time.Since(t0)
	clients.Wait()
	serving.Wait()
	elapsed := time.Since(t0)

	if v := atomic.LoadUint64(&verified); v != conns {
		panic(fmt.Sprintf("tcp_echo_10k: %d clients verified their echoes, want %d", v, conns))
	}
	if got, want := atomic.LoadUint64(&echoedBytes), uint64(conns*rounds*msgSize); got != want {
		panic(fmt.Sprintf("tcp_echo_10k: server echoed %d bytes, want %d", got, want))
	}
	ln.Close()
	fmt.Fprintf(os.Stderr, "tcp_echo_10k: connect phase %.3f ms, talk phase %.3f ms\n",
		float64(connected.Nanoseconds())/1e6, float64((elapsed-connected).Nanoseconds())/1e6)
	fmt.Printf("RESULT tcp_echo_10k %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
