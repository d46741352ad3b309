//go:build snaplog_serf_shim

// This file is NOT part of the snaplog harness's own package. At build time
// (see ../serf_go.ts) it is copied, unchanged, next to an unmodified copy of
// github.com/hashicorp/serf/serf's sources in a temporary GOPATH and compiled
// into package serf with -tags snaplog_serf_shim. It only exposes read-only
// observation of the snapshotter's internal channel and the unexported
// compact(); it changes no serf behaviour.

package serf

// SnaplogStreamLen reports how many events are queued in the snapshotter's
// internal stream channel (the one teeStream sends to without blocking, and
// drops from when it is full).
func (s *Snapshotter) SnaplogStreamLen() int { return len(s.streamCh) }

// SnaplogStreamCap reports the capacity of that internal stream channel.
func (s *Snapshotter) SnaplogStreamCap() int { return cap(s.streamCh) }

// SnaplogCompact calls serf's unexported compact(). It must only be called
// when the snapshotter's stream goroutine is not running (after Wait()).
func (s *Snapshotter) SnaplogCompact() error { return s.compact() }
