package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
)

// Kinds of events in an events file.
const (
	kindJoin = iota
	kindLeave
	kindFailed
	kindUser
	kindQuery
	kindSelfLeave
)

// benchEvent is one parsed line of an events file.
type benchEvent struct {
	kind  int
	name  string
	ip    net.IP
	port  uint16
	ltime uint64
}

// parseEventsFile reads an events file (see README.md for the format).
func parseEventsFile(path string) ([]benchEvent, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var out []benchEvent
	lineNo := 0
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF && line == "" {
			break
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		lineNo++
		line = strings.TrimSuffix(line, "\n")
		ev, perr := parseEventLine(line)
		if perr != nil {
			return nil, fmt.Errorf("%s:%d: %v: %q", path, lineNo, perr, line)
		}
		out = append(out, ev)
		if err == io.EOF {
			break
		}
	}
	return out, nil
}

func parseEventLine(line string) (benchEvent, error) {
	f := strings.Split(line, " ")
	switch f[0] {
	case "join":
		if len(f) != 3 || f[1] == "" {
			return benchEvent{}, fmt.Errorf("want: join NAME HOST:PORT")
		}
		host, portStr, err := net.SplitHostPort(f[2])
		if err != nil {
			return benchEvent{}, err
		}
		ip := net.ParseIP(host)
		if ip == nil {
			return benchEvent{}, fmt.Errorf("bad IP address %q", host)
		}
		if strings.Contains(host, ":") && !strings.HasPrefix(f[2], "[") {
			return benchEvent{}, fmt.Errorf("IPv6 address must be in brackets")
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil {
			return benchEvent{}, fmt.Errorf("bad port %q", portStr)
		}
		return benchEvent{kind: kindJoin, name: f[1], ip: ip, port: uint16(port)}, nil
	case "leave", "failed":
		if len(f) != 2 || f[1] == "" {
			return benchEvent{}, fmt.Errorf("want: %s NAME", f[0])
		}
		k := kindLeave
		if f[0] == "failed" {
			k = kindFailed
		}
		return benchEvent{kind: k, name: f[1]}, nil
	case "user", "query":
		if len(f) != 2 {
			return benchEvent{}, fmt.Errorf("want: %s LTIME", f[0])
		}
		lt, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return benchEvent{}, fmt.Errorf("bad LTIME %q", f[1])
		}
		k := kindUser
		if f[0] == "query" {
			k = kindQuery
		}
		return benchEvent{kind: k, ltime: lt}, nil
	case "self-leave":
		if len(f) != 1 {
			return benchEvent{}, fmt.Errorf("want: self-leave")
		}
		return benchEvent{kind: kindSelfLeave}, nil
	}
	return benchEvent{}, fmt.Errorf("unknown event")
}
