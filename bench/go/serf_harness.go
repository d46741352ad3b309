// Command serf_harness drives HashiCorp serf's real Snapshotter
// (github.com/hashicorp/serf/serf, v0.9.4 as packaged by Debian) for the
// snaplog benchmark comparison. It must be built by bench/go/serf_go.ts
// (buildSerfHarness), which compiles it against an unmodified copy of serf's
// sources plus the small observation shim in shim/snaplog_shim.go.
//
// Subcommands (each prints one JSON object on stdout):
//
//	append --events FILE --out SNAPSHOT [--min-compact-size N] [--rejoin-after-leave] [--keep]
//	replay --file SNAPSHOT [--rejoin-after-leave] [--nodes] [--runs N]
//	compact --alive N [--runs N]
//	gen --events N --nodes K --out FILE [--seed S]   (test workload generator)
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: serf_harness append|replay|compact|gen [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "append":
		err = cmdAppend(os.Args[2:])
	case "replay":
		err = cmdReplay(os.Args[2:])
	case "compact":
		err = cmdCompact(os.Args[2:])
	case "gen":
		err = cmdGen(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "serf_harness:", err)
		os.Exit(1)
	}
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func printJSON(v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(os.Stdout, string(b))
	return err
}

func u64(v serf.LamportTime) string { return strconv.FormatUint(uint64(v), 10) }

// ---------------------------------------------------------------- append --

// kindCounts counts snapshot lines by kind.
type kindCounts struct {
	Alive      int64 `json:"alive"`
	NotAlive   int64 `json:"notAlive"`
	Clock      int64 `json:"clock"`
	EventClock int64 `json:"eventClock"`
	QueryClock int64 `json:"queryClock"`
	Leave      int64 `json:"leave"`
	Other      int64 `json:"other"`
}

type expectedCounts struct {
	Alive      int64 `json:"alive"`
	NotAlive   int64 `json:"notAlive"`
	EventClock int64 `json:"eventClock"`
	QueryClock int64 `json:"queryClock"`
	// Leave is one `leave` line per self-leave event (serf writes one per Leave() call).
	Leave int64 `json:"leave"`
	// ClockMax is an upper bound: serf writes `clock: N` only when the clock
	// moved since the last clock line, so the count depends on timing.
	ClockMax int64 `json:"clockMax"`
}

type appendResult struct {
	Events            int            `json:"events"`
	MemberEvents      int64          `json:"memberEvents"`
	UserEvents        int64          `json:"userEvents"`
	QueryEvents       int64          `json:"queryEvents"`
	SelfLeaves        int64          `json:"selfLeaves"`
	RejoinAfterLeave  bool           `json:"rejoinAfterLeave"`
	Kept              bool           `json:"kept"`
	InitialBytes      int64          `json:"initialBytes"`
	InitialLastClock  string         `json:"initialLastClock"`
	AppendMs          float64        `json:"appendMs"`
	EventsPerSec      float64        `json:"eventsPerSec"`
	FileBytes         int64          `json:"fileBytes"`
	Lines             int64          `json:"lines"`
	ExpectedLines     *int64         `json:"expectedLines"`
	Dropped           *int64         `json:"dropped"`
	DataLines         int64          `json:"dataLines"`
	ExpectedDataLines int64          `json:"expectedDataLines"`
	ClockLines        int64          `json:"clockLines"`
	LinesByKind       kindCounts     `json:"linesByKind"`
	ExpectedByKind    expectedCounts `json:"expectedByKind"`
	LastClockLine     string         `json:"lastClockLine"`
	ExpectedLastClock string         `json:"expectedLastClock"`
	ClockLinesOrdered bool           `json:"clockLinesIncreasing"`
	Compacted         bool           `json:"compacted"`
	StateVerified     bool           `json:"stateVerified"`
	AliveAfter        int            `json:"aliveAfter"`
	PaceWaits         int64          `json:"paceWaits"`
	MaxInFlight       int            `json:"maxInFlight"`
	StreamCap         int            `json:"streamCap"`
	MinCompactSize    string         `json:"minCompactSize"`
	GoVersion         string         `json:"goVersion"`
	Errors            []string       `json:"errors,omitempty"`
}

// initialState is what serf replayed from the snapshot before the run (zero
// for a fresh file).
type initialState struct {
	alive     map[string]string
	lastClock uint64
	lastEvent uint64
	lastQuery uint64
}

// expectedState is what serf's replay (in the run's rejoinAfterLeave mode)
// must recover after the run, and the lines the run must append.
type expectedState struct {
	alive     map[string]string
	lastClock uint64
	lastEvent uint64
	lastQuery uint64
	counts    expectedCounts
	members   int64
	users     int64
	queries   int64
	leaves    int64
	dataLines int64
	// finalClock is the clock's Time()-1 at shutdown: the value of the last
	// clock line of the run when it has member events.
	finalClock uint64
}

// computeExpected models serf's Snapshotter on the events. The writer starts
// from init (its own replay of the existing file); after a self-leave it
// records nothing but clock lines (its ticker and shutdown still run
// updateClock against the clock it held before the leave). The replayed state
// is the one a replay in the same rejoinAfterLeave mode gives: a `leave` line
// clears the alive set and the clocks unless rejoin.
func computeExpected(evs []benchEvent, init initialState, rejoin bool) expectedState {
	st := expectedState{alive: make(map[string]string)}
	for k, v := range init.alive {
		st.alive[k] = v
	}
	st.lastClock, st.lastEvent, st.lastQuery = init.lastClock, init.lastEvent, init.lastQuery
	// The writer's own view (serf's lastClock/lastEventClock/lastQueryClock).
	wClock, wEvent, wQuery := init.lastClock, init.lastEvent, init.lastQuery
	// serf.Create increments the clock once and then witnesses the replayed
	// clock, so Time()-1 starts at the replayed clock; it is incremented before
	// every member event.
	base := init.lastClock
	leaving := false
	for _, e := range evs {
		switch e.kind {
		case kindJoin, kindLeave, kindFailed:
			st.members++
			if leaving {
				continue
			}
			if e.kind == kindJoin {
				st.counts.Alive++
				a := net.TCPAddr{IP: e.ip, Port: int(e.port)}
				st.alive[e.name] = a.String()
			} else {
				st.counts.NotAlive++
				delete(st.alive, e.name)
			}
			wClock = base + uint64(st.members)
			st.lastClock = wClock
		case kindUser:
			st.users++
			if !leaving && e.ltime > wEvent {
				wEvent = e.ltime
				st.lastEvent = e.ltime
				st.counts.EventClock++
			}
		case kindQuery:
			st.queries++
			if !leaving && e.ltime > wQuery {
				wQuery = e.ltime
				st.lastQuery = e.ltime
				st.counts.QueryClock++
			}
		case kindSelfLeave:
			st.leaves++
			st.counts.Leave++
			leaving = true
			if !rejoin {
				st.alive = make(map[string]string)
				st.lastClock, st.lastEvent, st.lastQuery = 0, 0, 0
			}
		}
	}
	st.finalClock = base + uint64(st.members)
	if st.finalClock > wClock {
		// Written by the ticker or at shutdown (after a leave).
		st.lastClock = st.finalClock
	}
	st.counts.ClockMax = st.members
	st.dataLines = st.counts.Alive + st.counts.NotAlive + st.counts.EventClock + st.counts.QueryClock + st.counts.Leave
	return st
}

func toSerfEvents(evs []benchEvent) []serf.Event {
	out := make([]serf.Event, len(evs))
	for i, e := range evs {
		switch e.kind {
		case kindJoin:
			out[i] = serf.MemberEvent{Type: serf.EventMemberJoin, Members: []serf.Member{{
				Name: e.name, Addr: e.ip, Port: e.port, Status: serf.StatusAlive}}}
		case kindLeave:
			out[i] = serf.MemberEvent{Type: serf.EventMemberLeave, Members: []serf.Member{{
				Name: e.name, Status: serf.StatusLeft}}}
		case kindFailed:
			out[i] = serf.MemberEvent{Type: serf.EventMemberFailed, Members: []serf.Member{{
				Name: e.name, Status: serf.StatusFailed}}}
		case kindUser:
			out[i] = serf.UserEvent{LTime: serf.LamportTime(e.ltime), Name: "bench"}
		case kindQuery:
			out[i] = &serf.Query{LTime: serf.LamportTime(e.ltime), Name: "bench"}
		case kindSelfLeave:
			out[i] = nil // Snapshotter.Leave(), called by cmdAppend
		}
	}
	return out
}

func cmdAppend(args []string) error {
	fs := flag.NewFlagSet("append", flag.ContinueOnError)
	eventsFile := fs.String("events", "", "events file")
	outFile := fs.String("out", "", "snapshot file to create (an existing file is replaced unless --keep)")
	minCompact := fs.Int64("min-compact-size", 0, "serf minCompactSize in bytes (default: never compact)")
	rejoin := fs.Bool("rejoin-after-leave", false, "serf rejoinAfterLeave (for the writer and the verifying replay)")
	keep := fs.Bool("keep", false, "append to an existing snapshot as a restarted agent would (replay it first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *eventsFile == "" || *outFile == "" {
		return errors.New("append: --events and --out are required")
	}
	evs, err := parseEventsFile(*eventsFile)
	if err != nil {
		return err
	}
	mcs := int64(math.MaxInt64)
	if *minCompact > 0 {
		mcs = *minCompact
	}
	init := initialState{alive: map[string]string{}}
	var initialBytes int64
	if !*keep {
		if err := os.Remove(*outFile); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else if info, err := os.Stat(*outFile); err == nil {
		// The state serf will replay, read before the timed span by a separate
		// replay (which never writes).
		initialBytes = info.Size()
		var replayLog bytes.Buffer
		prev, _, err := openForReplay(*outFile, *rejoin, log.New(&replayLog, "", 0))
		if err != nil {
			return err
		}
		for _, n := range prev.AliveNodes() {
			init.alive[n.Name] = n.Addr
		}
		init.lastClock = uint64(prev.LastClock())
		init.lastEvent = uint64(prev.LastEventClock())
		init.lastQuery = uint64(prev.LastQueryClock())
	} else if !os.IsNotExist(err) {
		return err
	}
	exp := computeExpected(evs, init, *rejoin)
	sevs := toSerfEvents(evs)
	evs = nil
	var logBuf bytes.Buffer
	logger := log.New(&logBuf, "", 0)
	clock := &serf.LamportClock{}
	shutdownCh := make(chan struct{})
	// outCh is what serf forwards every event to (the application's EventCh
	// in a real agent). teeStream sends to it right AFTER its non-blocking
	// send into the internal stream channel, so receiving an event here proves
	// the event has left inCh and has been offered to the stream channel.
	outCh := make(chan serf.Event, 4*2048)
	runtime.GC()

	start := time.Now()
	inCh, snap, err := serf.NewSnapshotter(*outFile, int(mcs), *rejoin, logger, clock, outCh, shutdownCh)
	if err != nil {
		return err
	}
	// As serf.Create does after NewSnapshotter: increment, then witness the
	// replayed clock (a no-op for a fresh file).
	clock.Increment()
	clock.Witness(snap.LastClock())
	// Held open until the final stat: serf's compaction unlinks the old file, and a file
	// system may give its inode number to a later compaction's new file, which would make
	// the final file look like the initial one (os.SameFile compares inode numbers). An
	// open descriptor keeps the old inode allocated, so no new file can take its number.
	initialFile, err := os.Open(*outFile)
	if err != nil {
		return err
	}
	defer initialFile.Close()
	initialInfo, err := initialFile.Stat()
	if err != nil {
		return err
	}
	streamCap := snap.SnaplogStreamCap()

	// Pacing. teeStream moves events from inCh to streamCh with a
	// NON-blocking send and silently drops an event when streamCh is full.
	// We are the only producer. Every event we sent but have not yet seen on
	// outCh is in inCh, in teeStream's hands, or already in streamCh; so
	// after sending one more event the occupancy of streamCh can never exceed
	// len(streamCh) + (sent - forwarded) + 1. We only send while that bound
	// is <= cap(streamCh), which makes a drop impossible. The same bound keeps
	// inCh and outCh from ever filling (outCh has 4x the capacity).
	var sent, forwarded, paceWaits int64
	maxInFlight := 0
	drain := func() {
		for {
			select {
			case <-outCh:
				forwarded++
			default:
				return
			}
		}
	}
	// settle waits until every event sent has been forwarded and taken from
	// the stream channel (the stream goroutine is at most finishing the last one).
	settle := func() {
		for forwarded < sent {
			<-outCh
			forwarded++
		}
		for spins := 0; snap.SnaplogStreamLen() > 0; spins++ {
			if spins < 64 {
				runtime.Gosched()
			} else {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	for _, e := range sevs {
		if e == nil {
			// self-leave: stream() selects between leaveCh and streamCh at random,
			// so everything sent before must be taken first; Leave() returns once
			// the stream goroutine has taken the leave, and events sent afterwards
			// reach it only after the leave is written.
			settle()
			snap.Leave()
			continue
		}
		for {
			inflight := int(sent-forwarded) + snap.SnaplogStreamLen()
			if inflight+1 <= streamCap {
				if inflight+1 > maxInFlight {
					maxInFlight = inflight + 1
				}
				break
			}
			drain()
			inflight = int(sent-forwarded) + snap.SnaplogStreamLen()
			if inflight+1 <= streamCap {
				continue
			}
			paceWaits++
			// The writer lags: wait until it has caught up by half the
			// channel before polling again (hysteresis keeps polling cheap).
			for spins := 0; int(sent-forwarded)+snap.SnaplogStreamLen() > streamCap/2; spins++ {
				if spins < 64 {
					runtime.Gosched()
				} else {
					time.Sleep(20 * time.Microsecond)
				}
				drain()
			}
		}
		if _, ok := e.(serf.MemberEvent); ok {
			clock.Increment() // before each member event, as serf does
		}
		inCh <- e
		sent++
		if sent-forwarded > int64(streamCap/2) {
			drain()
		}
	}
	// Wait until teeStream has forwarded everything, then until the stream
	// goroutine has taken everything from streamCh. After that the stream
	// goroutine is at most finishing its last event; it only looks at the
	// shutdown channel afterwards, so closing it now loses nothing (serf's
	// shutdown drain breaks out as soon as streamCh is momentarily empty, so
	// closing earlier could lose events still in flight).
	settle()
	close(shutdownCh)
	snap.Wait()
	elapsed := time.Since(start)

	res := appendResult{
		Events:           len(sevs),
		MemberEvents:     exp.members,
		UserEvents:       exp.users,
		QueryEvents:      exp.queries,
		SelfLeaves:       exp.leaves,
		RejoinAfterLeave: *rejoin,
		Kept:             *keep,
		InitialBytes:     initialBytes,
		InitialLastClock: strconv.FormatUint(init.lastClock, 10),
		AppendMs:         ms(elapsed),
		PaceWaits:        paceWaits,
		MaxInFlight:      maxInFlight,
		StreamCap:        streamCap,
		MinCompactSize:   strconv.FormatInt(mcs, 10),
		GoVersion:        runtime.Version(),
		ExpectedByKind:   exp.counts,
	}
	if elapsed > 0 {
		res.EventsPerSec = float64(len(sevs)) / elapsed.Seconds()
	}
	sevs = nil

	finalInfo, err := os.Stat(*outFile)
	if err != nil {
		return err
	}
	res.FileBytes = finalInfo.Size()
	// compact() writes a new file and renames it over the old one.
	res.Compacted = !os.SameFile(initialInfo, finalInfo)

	// Only the lines this run appended (after the initial bytes) are counted.
	var counted int64
	if !res.Compacted {
		counted = initialBytes
	}
	counts, lastClock, increasing, nlines, err := countSnapshotLines(*outFile, counted)
	if err != nil {
		return err
	}
	res.Lines = nlines
	res.LinesByKind = counts
	res.ClockLines = counts.Clock
	res.DataLines = counts.Alive + counts.NotAlive + counts.EventClock + counts.QueryClock + counts.Leave
	res.ExpectedDataLines = exp.dataLines
	res.LastClockLine = strconv.FormatUint(lastClock, 10)
	res.ExpectedLastClock = strconv.FormatUint(exp.finalClock, 10)
	res.ClockLinesOrdered = increasing

	var problems []string
	if !res.Compacted {
		// Every event that reached the writer leaves a deterministic line
		// (except stale user/query LTimes, already excluded from the
		// expectation); clock lines are timing dependent and checked by value.
		el := exp.dataLines + counts.Clock
		dropped := exp.dataLines - res.DataLines
		res.ExpectedLines = &el
		res.Dropped = &dropped
		check := func(what string, got, want int64) {
			if got != want {
				problems = append(problems, fmt.Sprintf("%s lines: got %d, want %d", what, got, want))
			}
		}
		check("alive", counts.Alive, exp.counts.Alive)
		check("not-alive", counts.NotAlive, exp.counts.NotAlive)
		check("event-clock", counts.EventClock, exp.counts.EventClock)
		check("query-clock", counts.QueryClock, exp.counts.QueryClock)
		check("leave", counts.Leave, exp.counts.Leave)
		check("unrecognized", counts.Other, 0)
		if counts.Clock > exp.counts.ClockMax {
			problems = append(problems, fmt.Sprintf("clock lines: got %d, want <= %d", counts.Clock, exp.counts.ClockMax))
		}
		if exp.members > 0 && counts.Clock == 0 {
			problems = append(problems, "no clock line written")
		}
		if exp.members > 0 && lastClock != exp.finalClock {
			problems = append(problems, fmt.Sprintf("last clock line: got %d, want %d", lastClock, exp.finalClock))
		}
		if !increasing {
			problems = append(problems, "clock lines are not strictly increasing")
		}
	}

	// Independent of compaction: serf's own replay of the file must recover
	// exactly the state the events describe.
	stateProblems, aliveAfter, err := verifyState(*outFile, exp, *rejoin)
	if err != nil {
		return err
	}
	res.AliveAfter = aliveAfter
	problems = append(problems, stateProblems...)
	if res.Compacted && len(stateProblems) > 0 {
		d := int64(len(stateProblems))
		res.Dropped = &d
	}
	res.StateVerified = len(stateProblems) == 0
	for _, l := range unexpectedLog(&logBuf, *rejoin) {
		problems = append(problems, "serf logged: "+l)
	}
	res.Errors = problems
	if err := printJSON(res); err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("append verification failed: %s", strings.Join(problems, "; "))
	}
	return nil
}

// countSnapshotLines classifies the newline-terminated lines of a snapshot
// file from byte offset `from` on, the same way serf's replay does.
func countSnapshotLines(path string, from int64) (c kindCounts, lastClock uint64, increasing bool, lines int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err = f.Seek(from, io.SeekStart); err != nil {
		return
	}
	r := bufio.NewReaderSize(f, 1<<20)
	increasing = true
	haveClock := false
	for {
		line, rerr := r.ReadString('\n')
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			} else if line != "" {
				c.Other++ // torn last line
			}
			return
		}
		lines++
		line = line[:len(line)-1]
		switch {
		case strings.HasPrefix(line, "alive: "):
			c.Alive++
		case strings.HasPrefix(line, "not-alive: "):
			c.NotAlive++
		case strings.HasPrefix(line, "clock: "):
			c.Clock++
			v, perr := strconv.ParseUint(line[len("clock: "):], 10, 64)
			if perr != nil {
				increasing = false
				continue
			}
			if haveClock && v <= lastClock {
				increasing = false
			}
			haveClock = true
			lastClock = v
		case strings.HasPrefix(line, "event-clock: "):
			c.EventClock++
		case strings.HasPrefix(line, "query-clock: "):
			c.QueryClock++
		case line == "leave":
			c.Leave++
		default:
			c.Other++
		}
	}
}

// openForReplay replays path with serf's NewSnapshotter without ever writing
// to it: the clock is set to 1 so updateClock (ticker, shutdown) sees
// Time()-1 = 0, which is never greater than the replayed clock, and the
// snapshotter is never shut down.
func openForReplay(path string, rejoin bool, logger *log.Logger) (*serf.Snapshotter, time.Duration, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, 0, err // serf would create a missing file
	}
	clock := &serf.LamportClock{}
	clock.Increment()
	shutdownCh := make(chan struct{})
	start := time.Now()
	_, snap, err := serf.NewSnapshotter(path, math.MaxInt64, rejoin, logger, clock, nil, shutdownCh)
	d := time.Since(start)
	return snap, d, err
}

func verifyState(path string, exp expectedState, rejoin bool) ([]string, int, error) {
	var logBuf bytes.Buffer
	snap, _, err := openForReplay(path, rejoin, log.New(&logBuf, "", 0))
	if err != nil {
		return nil, 0, err
	}
	var problems []string
	got := snap.AliveNodes()
	if len(got) != len(exp.alive) {
		problems = append(problems, fmt.Sprintf("replayed alive nodes: got %d, want %d", len(got), len(exp.alive)))
	}
	bad := 0
	for _, n := range got {
		if a, ok := exp.alive[n.Name]; !ok || a != n.Addr {
			if bad < 5 {
				problems = append(problems, fmt.Sprintf("replayed node %q at %q, want %q (present=%v)", n.Name, n.Addr, a, ok))
			}
			bad++
		}
	}
	if uint64(snap.LastClock()) != exp.lastClock {
		problems = append(problems, fmt.Sprintf("replayed clock %d, want %d", snap.LastClock(), exp.lastClock))
	}
	if uint64(snap.LastEventClock()) != exp.lastEvent {
		problems = append(problems, fmt.Sprintf("replayed event clock %d, want %d", snap.LastEventClock(), exp.lastEvent))
	}
	if uint64(snap.LastQueryClock()) != exp.lastQuery {
		problems = append(problems, fmt.Sprintf("replayed query clock %d, want %d", snap.LastQueryClock(), exp.lastQuery))
	}
	for _, l := range unexpectedLog(&logBuf, rejoin) {
		problems = append(problems, "replay logged: "+l)
	}
	return problems, len(got), nil
}

// unexpectedLog returns what serf logged, but for the line it logs (with
// rejoin) for each `leave` line its replay ignores.
func unexpectedLog(buf *bytes.Buffer, rejoin bool) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l != "" && !(rejoin && l == "[INFO] serf: Ignoring previous leave in snapshot") {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------------- replay --

type nodeJSON struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

type replayResult struct {
	ReplayMs         float64     `json:"replayMs"`
	RunsMs           []float64   `json:"runsMs"`
	FileBytes        int64       `json:"fileBytes"`
	Lines            int64       `json:"lines"`
	AliveCount       int         `json:"aliveCount"`
	LastClock        string      `json:"lastClock"`
	LastEventClock   string      `json:"lastEventClock"`
	LastQueryClock   string      `json:"lastQueryClock"`
	MbPerSec         float64     `json:"mbPerSec"`
	RejoinAfterLeave bool        `json:"rejoinAfterLeave"`
	SerfLogCount     int         `json:"serfLogCount"`
	SerfLog          []string    `json:"serfLog"`
	AliveNodes       *[]nodeJSON `json:"aliveNodes,omitempty"` // non-nil only with --nodes
}

const maxLogLines = 1000

func cmdReplay(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	file := fs.String("file", "", "snapshot file")
	rejoin := fs.Bool("rejoin-after-leave", false, "serf rejoinAfterLeave")
	nodes := fs.Bool("nodes", false, "include the alive nodes")
	runs := fs.Int("runs", 1, "replay this many times; replayMs is the fastest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("replay: --file is required")
	}
	if *runs < 1 {
		*runs = 1
	}
	info, err := os.Stat(*file)
	if err != nil {
		return err
	}
	res := replayResult{FileBytes: info.Size(), RejoinAfterLeave: *rejoin, SerfLog: []string{}}
	var snap *serf.Snapshotter
	var logBuf bytes.Buffer
	for i := 0; i < *runs; i++ {
		snap = nil
		logBuf.Reset()
		runtime.GC()
		s, d, err := openForReplay(*file, *rejoin, log.New(&logBuf, "", 0))
		if err != nil {
			return err
		}
		snap = s
		res.RunsMs = append(res.RunsMs, ms(d))
		if i == 0 || ms(d) < res.ReplayMs {
			res.ReplayMs = ms(d)
		}
	}
	if res.ReplayMs > 0 {
		res.MbPerSec = float64(res.FileBytes) / 1e6 / (res.ReplayMs / 1e3)
	}
	alive := snap.AliveNodes()
	res.AliveCount = len(alive)
	res.LastClock = u64(snap.LastClock())
	res.LastEventClock = u64(snap.LastEventClock())
	res.LastQueryClock = u64(snap.LastQueryClock())
	if logBuf.Len() > 0 {
		all := strings.Split(strings.TrimSuffix(logBuf.String(), "\n"), "\n")
		res.SerfLogCount = len(all)
		if len(all) > maxLogLines {
			all = all[:maxLogLines]
		}
		res.SerfLog = all
	}
	if *nodes {
		list := make([]nodeJSON, 0, len(alive))
		for _, n := range alive {
			list = append(list, nodeJSON{n.Name, n.Addr})
		}
		// Go string comparison is byte-wise.
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		res.AliveNodes = &list
	}
	_, _, _, res.Lines, err = countSnapshotLines(*file, 0)
	if err != nil {
		return err
	}
	// The snapshotter is deliberately never shut down (shutdown may write).
	return printJSON(res)
}

// --------------------------------------------------------------- compact --

type compactResult struct {
	AliveNodes  int       `json:"aliveNodes"`
	CompactMs   float64   `json:"compactMs"`
	RunsMs      []float64 `json:"runsMs"`
	FileBytes   int64     `json:"fileBytes"`
	SourceBytes int64     `json:"sourceBytes"`
}

func cmdCompact(args []string) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	n := fs.Int("alive", 0, "number of alive nodes")
	runs := fs.Int("runs", 5, "number of compactions; compactMs is the fastest")
	dir := fs.String("dir", "", "directory for the temporary snapshot (default: system temp)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 0 || *runs < 1 {
		return errors.New("compact: --alive N (>= 0) and --runs >= 1")
	}
	tmp, err := ioutil.TempDir(*dir, "serf-compact-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "serf.snapshot")

	// Build the state: a snapshot of N joins (each followed by a clock line,
	// as serf writes them) replayed by serf itself.
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := 0; i < *n; i++ {
		fmt.Fprintf(w, "alive: node-%07d 10.%d.%d.%d:7946\nclock: %d\n", i, (i>>16)&255, (i>>8)&255, i&255, i+1)
	}
	fmt.Fprintf(w, "event-clock: %d\nquery-clock: %d\n", *n/10+1, *n/20+1)
	if err := w.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	src, _ := os.Stat(path)

	var logBuf bytes.Buffer
	clock := &serf.LamportClock{}
	shutdownCh := make(chan struct{})
	_, snap, err := serf.NewSnapshotter(path, math.MaxInt64, false, log.New(&logBuf, "", 0), clock, nil, shutdownCh)
	if err != nil {
		return err
	}
	clock.Increment()
	clock.Witness(snap.LastClock()) // as serf.Create does: nothing to write at shutdown
	if got := len(snap.AliveNodes()); got != *n {
		return fmt.Errorf("replayed %d alive nodes, want %d", got, *n)
	}
	// Stop serf's goroutines so compact() runs with exclusive access to the
	// snapshotter, exactly as it would inside the stream goroutine.
	close(shutdownCh)
	snap.Wait()

	res := compactResult{AliveNodes: *n, SourceBytes: src.Size()}
	for i := 0; i < *runs; i++ {
		runtime.GC()
		start := time.Now()
		err := snap.SnaplogCompact()
		d := time.Since(start)
		if err != nil {
			return err
		}
		res.RunsMs = append(res.RunsMs, ms(d))
		if i == 0 || ms(d) < res.CompactMs {
			res.CompactMs = ms(d)
		}
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	res.FileBytes = info.Size()
	counts, _, _, _, err := countSnapshotLines(path, 0)
	if err != nil {
		return err
	}
	if counts.Alive != int64(*n) || counts.Clock != 1 || counts.EventClock != 1 || counts.QueryClock != 1 {
		return fmt.Errorf("unexpected compacted file: %+v", counts)
	}
	return printJSON(res)
}
