// Command slowest reads what `go test -json` prints and lists the slowest tests, so that
// whoever makes the suite slower sees where the time went:
//
//	go test -json ./... | go run ./harness/cmd/slowest
//	go test -json -run TestRoom ./harness | go run ./harness/cmd/slowest -n 30 -subtests
//
// A test that ran side by side with others (t.Parallel) counts from its start to its end, so
// the figures add up to more than the run took; the packages' own times, listed first, are
// what the run took.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
)

// event is one line of `go test -json` (test2json's TestEvent), the fields used here.
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
}

// result is how one test or package ended.
type result struct {
	name    string
	action  string // pass, fail or skip
	elapsed float64
}

func main() {
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go test -json ./... | slowest [flags]\n\n"+
			"Lists the slowest tests of a go test -json run, and how long each package took.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	n := flag.Int("n", 20, "how many tests to list")
	subtests := flag.Bool("subtests", false, "list subtests too, not only top-level tests")
	flag.Parse()
	if flag.NArg() > 0 || *n < 1 {
		fmt.Fprintln(os.Stderr, "slowest: takes no arguments, and -n must be at least 1; it reads go test -json on its input")
		os.Exit(2)
	}
	packages, tests, err := read(os.Stdin, *subtests)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slowest: %v\n", err)
		os.Exit(1)
	}
	if len(packages) == 0 {
		fmt.Fprintln(os.Stderr, "slowest: no test results on the input: pipe `go test -json ./...` into it")
		os.Exit(1)
	}
	fmt.Println("packages:")
	for _, p := range packages {
		fmt.Printf("%8.1f s  %-4s  %s\n", p.elapsed, p.action, p.name)
	}
	fmt.Printf("\nthe %d slowest tests:\n", min(*n, len(tests)))
	for _, t := range tests[:min(*n, len(tests))] {
		fmt.Printf("%8.1f s  %-4s  %s\n", t.elapsed, t.action, t.name)
	}
}

// read takes the packages' and tests' results from a go test -json stream, each list slowest
// first. Lines that are not JSON (a build error, say) are skipped.
func read(r io.Reader, subtests bool) (packages, tests []result, err error) {
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var e event
		if json.Unmarshal(scanner.Bytes(), &e) != nil {
			continue
		}
		if e.Action != "pass" && e.Action != "fail" && e.Action != "skip" {
			continue
		}
		switch {
		case e.Test == "" && e.Action == "skip":
			// a package with no tests
		case e.Test == "":
			packages = append(packages, result{e.Package, e.Action, e.Elapsed})
		case subtests || !strings.Contains(e.Test, "/"):
			tests = append(tests, result{path.Base(e.Package) + " " + e.Test, e.Action, e.Elapsed})
		}
	}
	slowestFirst := func(list []result) {
		sort.SliceStable(list, func(i, j int) bool { return list[i].elapsed > list[j].elapsed })
	}
	slowestFirst(packages)
	slowestFirst(tests)
	return packages, tests, scanner.Err()
}
