//go:build linux || darwin

package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The secret stays off the command line. Every user of a machine can read every process's
// command line (ps shows it), so a -nats URL typed there gives the room's secret away. Two
// ways keep it private, as NATS's own tools do: the URL in the environment variable NATS_URL
// (a process's environment is readable by its owner only), and the hub's URL in a file of
// its owner's only (-nats-url-file), which NATS_URL=$(cat FILE) reads.

// natsURLs is where to join the room: -nats, or else NATS_URL; "" means run the hub here.
func natsURLs(flagValue string) string {
	if flagValue != "" {
		return flagValue // the flag wins, as it does for NATS's own tools
	}
	return os.Getenv("NATS_URL")
}

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

// writeURLFile writes the join URLs, comma-separated as NATS_URL takes them, to path,
// readable and writable by its owner only, also when the file was there already.
func writeURLFile(path string, urls []string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := fmt.Fprintln(f, strings.Join(urls, ",")); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// secretInURLFile is the secret of the URLs in path, if it holds any: a hub restarted with the
// same -nats-url-file keeps its secret, so that the servers that joined it come back.
func secretInURLFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	first, _, _ := strings.Cut(strings.TrimSpace(string(data)), ",")
	if u, err := url.Parse(first); err == nil && u.User != nil {
		return u.User.Username()
	}
	return ""
}
