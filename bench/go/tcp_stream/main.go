// tcp_stream: one loopback TCP connection; the client writes 1 GiB in 64 KiB
// chunks and then shuts down its write side, the server (a goroutine of the
// same process) reads into a 64 KiB buffer and discards until end of stream,
// then replies with the byte count as 8 bytes. Measures bulk throughput
// through the poller: 1 GiB / time is the GB/s.
// Counterpart of bench/src/bin/tcp_stream.rs and tokio_tcp_stream.rs.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

const (
	total = 1 << 30 // bytes sent
	chunk = 64 << 10
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("tcp_stream: listen: %v", err))
	}
	served := make(chan struct{})

	go func() {
		c, err := ln.Accept()
		if err != nil {
			panic(fmt.Sprintf("tcp_stream: accept: %v", err))
		}
		if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
			panic(fmt.Sprintf("tcp_stream: server nodelay: %v", err))
		}
		buf := make([]byte, chunk)
		var n uint64
		for {
			r, err := c.Read(buf)
			n += uint64(r)
			if err == io.EOF {
				break
			}
			if err != nil {
				panic(fmt.Sprintf("tcp_stream: server read: %v", err))
			}
		}
		var reply [8]byte
		binary.LittleEndian.PutUint64(reply[:], n)
		if _, err := c.Write(reply[:]); err != nil {
			panic(fmt.Sprintf("tcp_stream: server write: %v", err))
		}
		c.Close()
		close(served)
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(fmt.Sprintf("tcp_stream: connect: %v", err))
	}
	conn := c.(*net.TCPConn)
	if err := conn.SetNoDelay(true); err != nil {
		panic(fmt.Sprintf("tcp_stream: client nodelay: %v", err))
	}
	data := make([]byte, chunk)
	for i := range data {
		data[i] = byte(i % 251)
	}

	var reply [8]byte
	start := time.Now()
	for sent := 0; sent < total; sent += chunk {
		if _, err := conn.Write(data); err != nil {
			panic(fmt.Sprintf("tcp_stream: client write: %v", err))
		}
	}
	if err := conn.CloseWrite(); err != nil {
		panic(fmt.Sprintf("tcp_stream: shutdown: %v", err))
	}
	if _, err := io.ReadFull(conn, reply[:]); err != nil {
		panic(fmt.Sprintf("tcp_stream: client read: %v", err))
	}
	elapsed := time.Since(start)

	<-served
	conn.Close()
	if got := binary.LittleEndian.Uint64(reply[:]); got != total {
		panic(fmt.Sprintf("tcp_stream: server counted %d bytes, want %d", got, total))
	}
	fmt.Printf("RESULT tcp_stream %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
