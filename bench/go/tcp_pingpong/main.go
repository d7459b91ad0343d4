// tcp_pingpong: one loopback TCP connection (TCP_NODELAY on both ends), an
// echo server in a goroutine of the same process, 1,000,000 round trips of an
// 8-byte message: the client writes 8 bytes, the server echoes them, the
// client reads 8 bytes back. Measures the latency of one poller wake-up per
// direction: read would block, park, readiness, wake, switch.
// Counterpart of bench/src/bin/tcp_pingpong.rs and tokio_tcp_pingpong.rs.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

const rounds = 1_000_000

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("tcp_pingpong: listen: %v", err))
	}
	echoed := make(chan uint64)

	go func() {
		c, err := ln.Accept()
		if err != nil {
			panic(fmt.Sprintf("tcp_pingpong: accept: %v", err))
		}
		if err := c.(*net.TCPConn).SetNoDelay(true); err != nil {
			panic(fmt.Sprintf("tcp_pingpong: server nodelay: %v", err))
		}
		var buf [8]byte
		var count uint64
		for {
			if _, err := io.ReadFull(c, buf[:]); err != nil {
				if err == io.EOF {
					break // the client closed after its last round trip
				}
				panic(fmt.Sprintf("tcp_pingpong: server read: %v", err))
			}
			if _, err := c.Write(buf[:]); err != nil {
				panic(fmt.Sprintf("tcp_pingpong: server write: %v", err))
			}
			count++
		}
		c.Close()
		echoed <- count
	}()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(fmt.Sprintf("tcp_pingpong: connect: %v", err))
	}
	conn := c.(*net.TCPConn)
	if err := conn.SetNoDelay(true); err != nil {
		panic(fmt.Sprintf("tcp_pingpong: client nodelay: %v", err))
	}

	var msg, back [8]byte
	start := time.Now()
	var sum uint64
	for i := uint64(0); i < rounds; i++ {
		binary.LittleEndian.PutUint64(msg[:], i)
		if _, err := conn.Write(msg[:]); err != nil {
			panic(fmt.Sprintf("tcp_pingpong: client write: %v", err))
		}
		if _, err := io.ReadFull(conn, back[:]); err != nil {
			panic(fmt.Sprintf("tcp_pingpong: client read: %v", err))
		}
		got := binary.LittleEndian.Uint64(back[:])
		if got != i {
			panic(fmt.Sprintf("tcp_pingpong: sent %d, got back %d", i, got))
		}
		sum += got
	}
	conn.Close()
	count := <-echoed
	elapsed := time.Since(start)

	if count != rounds {
		panic(fmt.Sprintf("tcp_pingpong: server echoed %d messages, want %d", count, rounds))
	}
	if want := uint64(rounds) * (rounds - 1) / 2; sum != want {
		panic(fmt.Sprintf("tcp_pingpong: sum is %d, want %d", sum, want))
	}
	fmt.Printf("RESULT tcp_pingpong %.3f ms\n", float64(elapsed.Nanoseconds())/1e6)
}
