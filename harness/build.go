package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{}

	// A signal cancels the builds under way (StopAll).
	buildContext, cancelBuilds = context.WithCancel(context.Background())
)

// Root is the module's root folder, found by walking up from the working directory to go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// BuildBinary is Binary for programs that are not tests (the CPU table command, say).
func BuildBinary(pkg string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := built[pkg]; ok {
		return path, nil
	}
	root, err := Root()
	if err != nil {
		return "", err
	}
	if buildDir == "" {
		buildDir, err = os.MkdirTemp("", "chat-workshop-bin-")
		if err != nil {
			return "", err
		}
	}
	// Named after its folder, as `go run` names it, since the programs name themselves in
	// their error messages after their executable.
	path := filepath.Join(buildDir, pkg, filepath.Base(pkg))
	cmd := buildCommand(root, buildDir, "build", "-o", path, "./"+pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./%s: %v\n%s", pkg, err, out)
	}
	built[pkg] = path
	return path, nil
}

// RemoveBuilds deletes the binaries built so far; TestMain calls it once the tests are over.
func RemoveBuilds() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// buildCommand is the `go build` that BuildBinary runs, with its work folder (GOTMPDIR) inside
// buildDir: a go command interrupted by a signal leaves its work folder behind, and this way
// RemoveBuilds deletes it with the rest. A signal to this program interrupts the build, as
// Ctrl-C in a terminal would.
func buildCommand(dir, buildDir string, args ...string) *exec.Cmd {
	work := filepath.Join(buildDir, "go-tmp")
	_ = os.MkdirAll(work, 0o755) // if it fails, go build says so
	cmd := exec.CommandContext(buildContext, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTMPDIR="+work)
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second // then it is killed
	return cmd
}
