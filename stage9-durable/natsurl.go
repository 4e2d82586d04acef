//go:build linux || darwin

package main

import (
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The secret stays off the command line, which every user of the machine can read (ps). As
// with NATS's own tools, the URL can come in the environment variable NATS_URL (readable by
// its owner only; -nats wins over it: cluster.go), and the hub can write its URLs to a file of
// its owner's (-nats-url-file), for NATS_URL=$(cat FILE).

// joinURLs are the URLs the hub's clients join it with, secret included: 127.0.0.1 for this
// machine, then each of the machine's own addresses for the others, unless the hub listens on
// one address only. A URL names an address, never "HOST": pasted as printed, it works.
func joinURLs(listenHost, secret string, port int) []string {
	hosts := []string{listenHost}
	if ip := net.ParseIP(listenHost); listenHost == "" || ip != nil && ip.IsUnspecified() {
		hosts = append([]string{"127.0.0.1"}, machineAddresses()...)
	}
	var urls []string
	for _, host := range hosts {
		u := url.URL{Scheme: "nats", User: url.User(secret), Host: net.JoinHostPort(host, strconv.Itoa(port))}
		urls = append(urls, u.String())
	}
	return urls
}

// machineAddresses are the IPv4 addresses of this machine's interfaces, loopback aside: the
// ones another laptop on the same network can reach.
func machineAddresses() []string {
	addresses, _ := net.InterfaceAddrs() // none known: 127.0.0.1 alone, which always works here
	var hosts []string
	for _, a := range addresses {
		if ip, ok := a.(*net.IPNet); ok && !ip.IP.IsLoopback() && ip.IP.To4() != nil {
			hosts = append(hosts, ip.IP.String())
		}
	}
	return hosts
}

// writeURLFile writes the join URLs to path, comma-separated as NATS_URL takes them, readable
// by its owner only. A file that was there keeps its mode when written over: it goes first.
func writeURLFile(path string, urls []string) error {
	os.Remove(path)
	return os.WriteFile(path, []byte(strings.Join(urls, ",")+"\n"), 0o600)
}

// secretInURLFile is the secret in path, if any: a hub restarted with it keeps its room.
func secretInURLFile(path string) string {
	data, _ := os.ReadFile(path) // none yet (or no -nats-url-file): a new secret
	u, err := url.Parse(strings.Split(strings.TrimSpace(string(data)), ",")[0])
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}
