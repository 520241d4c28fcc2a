// Command testrelay runs the Kamailio MSRP relay of the interop tests on
// loopback, to try the examples through a real RFC 4976 relay by hand. It
// prints the relay's URL with working credentials (and, over TLS, the file
// and fingerprint of its certificate), then runs until Ctrl-C.
//
//	go run ./internal/cmd/testrelay [-tls] [-port 2855]
//
// It needs Debian's kamailio (and kamailio-tls-modules for -tls).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/go-msrp/msrp/internal/testrelay"
)

func main() {
	useTLS := flag.Bool("tls", false, "serve msrps, with a fresh certificate for 127.0.0.1")
	port := flag.Int("port", 0, "port to listen on; 0 picks a free one")
	flag.Parse()
	r, err := testrelay.Start(*useTLS, *port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testrelay:", err)
		os.Exit(1)
	}
	fmt.Printf("relay: %s\n", r.URL())
	if *useTLS {
		fmt.Printf("its certificate: %s\nits fingerprint: %s\n", r.CAFile, r.Fingerprint)
		fmt.Printf("try: go run ./examples/chat -tls -relay '%s' -relay-ca '%s'\n", r.URL(), r.CAFile)
	} else {
		fmt.Printf("try: go run ./examples/chat -relay '%s'\n", r.URL())
	}
	fmt.Println("Ctrl-C stops it.")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-r.Done():
		fmt.Fprintf(os.Stderr, "testrelay: kamailio exited:\n%s", r.Log())
	}
	r.Stop()
}
