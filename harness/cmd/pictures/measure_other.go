//go:build !linux

package main

import (
	"errors"
	"time"

	"github.com/go-chat-workshop/simple-chat-server/harness/pictures"
)

// The runs read a server's CPU time from Linux's /proc while it runs; elsewhere only -draw
// works.
const cpuRunLength = 10 * time.Second

var errNeedsLinux = errors.New("measuring needs Linux's /proc (on macOS or Windows, run it in a Linux VM or WSL); -draw works anywhere")

func measureCPU(stage string) (*pictures.CPURun, error) { return nil, errNeedsLinux }

func measureFlood() (*pictures.FloodRun, error) { return nil, errNeedsLinux }
