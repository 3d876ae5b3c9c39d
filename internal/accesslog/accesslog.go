package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// maxBatch is how many bytes of lines the writer gathers before one write.
const maxBatch = 64 << 10

// ErrClosed is returned by Reopen after Close.
var ErrClosed = errors.New("accesslog: closed")

// flushDelay is the longest a line waits in memory before it is written: under load
// the writer makes a few large writes a second instead of one per request (nginx's
// access_log buffer= and flush=).
const flushDelay = 50 * time.Millisecond

// Writer writes entries to a file or standard output in one Format. Log formats the
// entry into a bounded in-memory batch and returns at once; one goroutine, owned by the
// AccessLog and stopped by Close, writes the batch when it reaches maxBatch bytes or
// flushDelay after its first line. When the batch is full (a slow disk, a blocked
// stdout) or a write fails (a full disk), lines are dropped and counted, never waited
// for: the proxy must not stall on its log.
type Writer struct {
	cfg    Config
	format Format
	limit  uint64        // lines waiting before new ones are dropped
	kick   chan struct{} // a first line or a full batch is waiting
	reopen chan chan error
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once

	dropped atomic.Uint64 // lines lost: batch full, write errors, logged after Close
	written atomic.Uint64 // lines written

	mu      sync.Mutex
	buf     []byte // lines not taken by the writer yet
	pending uint64 // lines in buf

	// owned by the writer goroutine
	out   io.Writer
	file  *os.File
	spare []byte
}

var _ Logger = (*Writer)(nil)

// Open opens cfg.Path for appending (or uses standard output when it is "")
// and starts the writer. The caller must Close it.
func Open(cfg Config) (*Writer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("admin: access log: %w", errs[0])
	}
	var out io.Writer = os.Stdout
	var file *os.File
	if cfg.Path != "" {
		f, err := openLog(cfg.Path)
		if err != nil {
			return nil, err
		}
		out, file = f, f
	}
	return start(cfg, out, file), nil
}

// NewWriter is Open writing to w (cfg.Path is ignored; Reopen does
// nothing). For standard error, tests, or a pipe the caller owns.
func NewWriter(cfg Config, w io.Writer) (*Writer, error) {
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("admin: access log: %w", errs[0])
	}
	cfg.Path = ""
	return start(cfg, w, nil), nil
}

func start(cfg Config, out io.Writer, file *os.File) *Writer {
	a := &Writer{
		cfg:    cfg,
		format: cfg.format(),
		limit:  uint64(cfg.buffer()),
		kick:   make(chan struct{}, 1),
		reopen: make(chan chan error),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		out:    out,
		file:   file,
		buf:    make([]byte, 0, maxBatch+4096),
		spare:  make([]byte, 0, maxBatch+4096),
	}
	go a.run()
	return a
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("admin: access log: %w", err)
	}
	return f, nil
}

// Log formats e into the batch; when the batch holds Buffer lines already, the line
// is dropped and counted.
func (a *Writer) Log(e *Entry) {
	if a.closed.Load() {
		a.dropped.Add(1)
		return
	}
	a.mu.Lock()
	if a.pending >= a.limit {
		a.mu.Unlock()
		a.dropped.Add(1)
		return
	}
	n := len(a.buf)
	a.buf = appendLine(a.buf, a.format, e, a.cfg.StripQuery)
	if len(a.buf) > n {
		a.pending++
	}
	kick := n == 0 || (n < maxBatch && len(a.buf) >= maxBatch)
	a.mu.Unlock()
	if kick {
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// Dropped returns how many lines were lost: queue full, failed writes, or logged after Close.
func (a *Writer) Dropped() uint64 { return a.dropped.Load() }

// Written returns how many lines were written successfully.
func (a *Writer) Written() uint64 { return a.written.Load() }

// Reopen writes out what is queued, then closes and reopens the file at the configured
// path (for logrotate, on SIGUSR1). If the path cannot be opened the old file is kept
// and the error returned. With standard output it only flushes.
func (a *Writer) Reopen() error {
	reply := make(chan error, 1)
	select {
	case a.reopen <- reply:
		return <-reply
	case <-a.done:
		return ErrClosed
	}
}

// Close writes out every queued line, stops the writer and closes the file. Entries
// logged afterwards are dropped and counted (one racing Close itself may be lost
// uncounted). Close is safe to call more than once.
func (a *Writer) Close() error {
	var err error
	a.once.Do(func() {
		a.closed.Store(true)
		close(a.quit)
		<-a.done
		if a.file != nil {
			err = a.file.Close()
		}
	})
	return err
}

func (a *Writer) run() {
	defer close(a.done)
	timer := time.NewTimer(flushDelay)
	timer.Stop()
	armed := false
	for {
		select {
		case <-a.kick:
			a.mu.Lock()
			full := len(a.buf) >= maxBatch
			a.mu.Unlock()
			if full {
				a.flush()
			} else if !armed {
				timer.Reset(flushDelay)
				armed = true
			}
		case <-timer.C:
			armed = false
			a.flush()
		case reply := <-a.reopen:
			a.flush()
			reply <- a.doReopen()
		case <-a.quit:
			a.flush()
			return
		}
	}
}

// flush writes the lines in the batch.
func (a *Writer) flush() {
	a.mu.Lock()
	b, lines := a.buf, a.pending
	a.buf, a.pending = a.spare[:0], 0
	a.mu.Unlock()
	a.spare = b
	if len(b) == 0 {
		return
	}
	if _, err := a.out.Write(b); err != nil {
		a.dropped.Add(lines)
	} else {
		a.written.Add(lines)
	}
}

func (a *Writer) doReopen() error {
	if a.file == nil {
		return nil
	}
	f, err := openLog(a.cfg.Path)
	if err != nil {
		return err
	}
	old := a.file
	a.out, a.file = f, f
	if err := old.Close(); err != nil {
		return fmt.Errorf("admin: access log: closing old file: %w", err)
	}
	return nil
}
