// The gateway of examples/gateway, written with Go's net/http and
// httputil.ReverseProxy, for the side-by-side benchmark in bench/http:
//
//	gateway -listen 127.0.0.1:8090 [-latency-ms 1] [-error-rate 0] [-deadline-ms 5000] [-backend-limit 256]
//
// Three in-process backends (users, orders, inventory) answer after a
// uniformly random latency between 0.5x and 1.5x -latency-ms, failing
// with 500 at -error-rate. The gateway proxies /users/, /orders/ and
// /inventory/ to them (at most -backend-limit connections per backend),
// fans /dashboard out to all three at once and merges the answers, and
// bounds every request by -deadline-ms (504 beyond).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

var services = []string{"users", "orders", "inventory"}

type backend struct {
	name string
	addr string
}

func startBackend(name string, latency time.Duration, errorRate float64) backend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		delay := time.Duration(float64(latency) * (0.5 + rand.Float64()))
		if ms := r.URL.Query().Get("delay_ms"); ms != "" {
			if n, err := strconv.Atoi(ms); err == nil {
				delay = time.Duration(n) * time.Millisecond
			}
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Type", "application/json")
		if errorRate > 0 && rand.Float64() < errorRate {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprintf(w, `{"service":"%s","error":"simulated failure"}`, name)
			return
		}
		fmt.Fprintf(w, `{"service":"%s","path":"%s"}`, name, r.URL.Path)
	})
	go http.Serve(ln, h)
	return backend{name: name, addr: ln.Addr().String()}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "gateway address")
	latencyMs := flag.Int("latency-ms", 1, "mean backend latency")
	errorRate := flag.Float64("error-rate", 0, "fraction of backend failures")
	deadlineMs := flag.Int("deadline-ms", 5000, "per-request deadline")
	limit := flag.Int("backend-limit", 256, "connections per backend")
	flag.Parse()

	latency := time.Duration(*latencyMs) * time.Millisecond
	deadline := time.Duration(*deadlineMs) * time.Millisecond
	transport := &http.Transport{
		MaxConnsPerHost:     *limit,
		MaxIdleConnsPerHost: *limit,
		MaxIdleConns:        *limit * len(services),
		IdleConnTimeout:     90 * time.Second,
	}
	client := &http.Client{Transport: transport}

	mux := http.NewServeMux()
	var backends []backend
	for _, name := range services {
		b := startBackend(name, latency, *errorRate)
		backends = append(backends, b)
		target, _ := url.Parse("http://" + b.addr)
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = transport
		proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.DeadlineExceeded) {
				http.Error(w, "deadline exceeded", http.StatusGatewayTimeout)
				return
			}
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
		mux.Handle("/"+name+"/", proxy)
	}
	mux.HandleFunc("/dashboard", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		parts := make([]string, len(backends))
		errs := make([]error, len(backends))
		var wg sync.WaitGroup
		for i, b := range backends {
			wg.Add(1)
			go func(i int, b backend) {
				defer wg.Done()
				u := "http://" + b.addr + "/" + b.name + "/summary"
				if r.URL.RawQuery != "" {
					u += "?" + r.URL.RawQuery
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				resp, err := client.Do(req)
				if err != nil {
					errs[i] = err
					cancel()
					return
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil || resp.StatusCode/100 != 2 {
					errs[i] = fmt.Errorf("%s answered %d", b.name, resp.StatusCode)
					cancel()
					return
				}
				parts[i] = string(body)
			}(i, b)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				if errors.Is(r.Context().Err(), context.DeadlineExceeded) {
					http.Error(w, "deadline exceeded", http.StatusGatewayTimeout)
				} else {
					http.Error(w, err.Error(), http.StatusBadGateway)
				}
				return
			}
		}
		var sb strings.Builder
		sb.WriteString("{")
		for i, b := range backends {
			if i > 0 {
				sb.WriteString(",")
			}
			fmt.Fprintf(&sb, `"%s":%s`, b.name, parts[i])
		}
		sb.WriteString("}")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, sb.String())
	})
	withDeadline := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), deadline)
		defer cancel()
		mux.ServeHTTP(w, r.WithContext(ctx))
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("go gateway listening on http://%s/\n", ln.Addr())
	srv := &http.Server{Handler: withDeadline, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	log.Fatal(srv.Serve(ln))
}
