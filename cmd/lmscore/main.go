// Command lmscore scores (context, continuation) pairs with a causal language
// model, computing every shared prompt prefix once. This package only parses
// flags: each subcommand lives in its own file and calls into the library.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// command is one subcommand. run gets the arguments after the subcommand's
// name; it returns errUsage (or a wrapped one) for bad flags.
type command struct {
	summary string
	run     func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

// register is called from each subcommand file's init.
func register(name, summary string, run func(ctx context.Context, args []string) error) {
	commands[name] = command{summary: summary, run: run}
}

var errUsage = errors.New("usage")

func usage() {
	fmt.Fprintln(os.Stderr, "usage: lmscore <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", name, commands[name].summary)
	}
	fmt.Fprintln(os.Stderr, "\nRun 'lmscore <command> -h' for a command's flags.")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "lmscore: unknown command %q\n\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	// The first Ctrl-C or SIGTERM cancels the context so that commands flush
	// what they have; a second one kills the process the usual way.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // restore the default handlers: the next signal ends the process
	}()
	err := cmd.run(ctx, os.Args[2:])
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintf(os.Stderr, "lmscore %s: %v\n", os.Args[1], err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "lmscore %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
