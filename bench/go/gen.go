package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand"
	"os"
)

// cmdGen writes a synthetic churn workload in the events-file format. It is
// only a test helper: the benchmark suite's own workloads come from the
// TypeScript generator.
func cmdGen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	n := fs.Int("events", 1000, "number of events")
	nodes := fs.Int("nodes", 100, "cluster size (distinct node names)")
	seed := fs.Int64("seed", 1, "PRNG seed")
	userPct := fs.Int("user-pct", 4, "percent of user events")
	queryPct := fs.Int("query-pct", 2, "percent of queries")
	out := fs.String("out", "", "output file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *nodes < 1 {
		return fmt.Errorf("gen: --out and --nodes >= 1 are required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewSource(*seed))
	alive := make([]bool, *nodes)
	randAddr := func() string {
		if rng.Intn(20) == 0 {
			return fmt.Sprintf("[fd00::%x:%x]:%d", rng.Intn(65536), rng.Intn(65536), 7946)
		}
		port := 7946
		if rng.Intn(10) == 0 {
			port = 1024 + rng.Intn(60000)
		}
		return fmt.Sprintf("10.%d.%d.%d:%d", rng.Intn(256), rng.Intn(256), 1+rng.Intn(254), port)
	}
	var userLT, queryLT uint64
	written := 0
	// Bootstrap: every node joins once (bounded by the event budget).
	for i := 0; i < *nodes && written < *n; i++ {
		fmt.Fprintf(w, "join node-%06d %s\n", i, randAddr())
		alive[i] = true
		written++
	}
	for ; written < *n; written++ {
		p := rng.Intn(100)
		switch {
		case p < *userPct:
			userLT += uint64(1 + rng.Intn(3))
			lt := userLT
			if rng.Intn(30) == 0 && lt > 2 { // occasional stale/duplicate LTime
				lt -= uint64(rng.Intn(3))
			}
			fmt.Fprintf(w, "user %d\n", lt)
		case p < *userPct+*queryPct:
			queryLT += uint64(1 + rng.Intn(3))
			fmt.Fprintf(w, "query %d\n", queryLT)
		default:
			i := rng.Intn(*nodes)
			if alive[i] {
				if rng.Intn(2) == 0 {
					fmt.Fprintf(w, "leave node-%06d\n", i)
				} else {
					fmt.Fprintf(w, "failed node-%06d\n", i)
				}
				alive[i] = false
			} else {
				fmt.Fprintf(w, "join node-%06d %s\n", i, randAddr()) // re-join at a new address
				alive[i] = true
			}
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}
