// Command fakesvc runs one instance of a meshbench sample service: it sleeps a
// configurable service time, fails on demand, calls its downstream services
// (through its sidecar when -proxy is set) and answers with a JSON reply.
//
//	fakesvc -service order -version v1 -pod order-v1-0 -listen 127.0.0.1:8080 \
//	    -proxy 127.0.0.1:15001 -calls payment:80/pay -latency 5ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/meshbench/meshbench/fakesvc"
)

func main() {
	f, err := fakesvc.ParseFlags("fakesvc", os.Args[1:], os.Stderr)
	if err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			os.Exit(0)
		case errors.Is(err, fakesvc.ErrFlagsReported):
			os.Exit(2) // the flag package already printed the message and usage
		}
		fmt.Fprintln(os.Stderr, "fakesvc:", strings.TrimPrefix(err.Error(), "fakesvc: "))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := fakesvc.Serve(ctx, f); err != nil {
		fmt.Fprintln(os.Stderr, "fakesvc:", strings.TrimPrefix(err.Error(), "fakesvc: "))
		os.Exit(1)
	}
}
