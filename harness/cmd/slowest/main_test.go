package main

import (
	"strings"
	"testing"
)

// A go test -json stream: the slowest test first, subtests only when asked, packages without
// tests and lines that are not JSON left out.
func TestRead(t *testing.T) {
	stream := `{"Action":"run","Package":"m/a","Test":"TestQuick"}
{"Action":"pass","Package":"m/a","Test":"TestQuick","Elapsed":0.5}
{"Action":"pass","Package":"m/a","Test":"TestSlow/sub","Elapsed":7}
{"Action":"fail","Package":"m/a","Test":"TestSlow","Elapsed":9}
# m/b [build failed]
{"Action":"skip","Package":"m/c","Elapsed":0}
{"Action":"fail","Package":"m/a","Elapsed":9.5}
`
	packages, tests, err := read(strings.NewReader(stream), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(packages) != 1 || packages[0] != (result{"m/a", "fail", 9.5}) {
		t.Errorf("packages: %v", packages)
	}
	if len(tests) != 2 || tests[0] != (result{"a TestSlow", "fail", 9}) || tests[1].name != "a TestQuick" {
		t.Errorf("tests: %v", tests)
	}
	_, tests, _ = read(strings.NewReader(stream), true)
	if len(tests) != 3 || tests[1].name != "a TestSlow/sub" {
		t.Errorf("with subtests: %v", tests)
	}
}
