package filter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// readBlockBytes is the size of the blocks readDomains hands to its parsers.
const readBlockBytes = 1 << 20

// readDomains is read for FormatDomains on two parsing goroutines: this
// goroutine reads the file in blocks cut at line ends and numbers their
// first lines; the parsers each fill a builder of their own, merged at the
// end (a DomainSet does not depend on the order of its entries). sizeHint
// is the file size when known (0 otherwise).
func (p *listParser) readDomains(r io.Reader, name string, sizeHint int64) error {
	type block struct {
		buf  []byte // the buffer, to hand back
		text []byte // whole lines
		line int    // number of the first
	}
	p.domains.init()
	var parsers [2]listParser
	for i := range parsers {
		b := &parsers[i].domains
		b.seed, b.seeded = p.domains.seed, true
		b.Grow(0, int(sizeHint/2))
	}
	bufBytes := int(min(max(sizeHint+1, maxLine+1), readBlockBytes))
	work := make(chan block, 2)
	free := make(chan []byte, 4)
	made := 0
	get := func() []byte {
		if len(free) == 0 && made < cap(free) {
			made++
			return make([]byte, 0, bufBytes)
		}
		return <-free
	}
	start := len(p.list.Problems)
	var wg sync.WaitGroup
	for i := range parsers {
		w := &parsers[i]
		wg.Go(func() {
			for b := range work {
				w.parseDomainLines(b.text, b.line, name)
				free <- b.buf[:0]
			}
		})
	}
	err := p.readBlocks(r, name, get, func(buf []byte) { free <- buf[:0] },
		func(buf, text []byte, line int) { work <- block{buf, text, line} })
	close(work)
	wg.Wait()
	for i := range parsers {
		w := &parsers[i]
		p.domains.merge(&w.domains)
		p.list.Malformed += w.list.Malformed
		p.list.Problems = append(p.list.Problems, w.list.Problems...)
	}
	slices.SortStableFunc(p.list.Problems[start:], func(a, b LineError) int { return a.Line - b.Line })
	if len(p.list.Problems) > maxProblems {
		p.list.Problems = p.list.Problems[:maxProblems:maxProblems]
	}
	return err
}

// readBlocks reads r into buffers from get, and passes each block of whole
// lines to send with the number of its first line (a partial last line is
// carried over to the next buffer). A line longer than a buffer is reported
// here and skipped; put takes back a buffer that is not sent.
func (p *listParser) readBlocks(r io.Reader, name string, get func() []byte, put func([]byte), send func(buf, text []byte, line int)) error {
	var carry []byte
	line := 1
	skipping := false // inside a line already reported as too long
	for {
		buf := append(get(), carry...)
		n, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			put(buf)
			return fmt.Errorf("filter: reading %s: %w", name, err)
		}
		text := buf
		if skipping {
			i := bytes.IndexByte(text, '\n')
			if i < 0 {
				carry = carry[:0]
				put(buf)
				if eof {
					return nil
				}
				continue
			}
			text, line, skipping = text[i+1:], line+1, false
		}
		if !eof {
			cut := bytes.LastIndexByte(text, '\n') + 1
			if cut == 0 { // a whole buffer and no line end
				p.problem(name, line, "line too long")
				carry, skipping = carry[:0], true
				put(buf)
				continue
			}
			carry = append(carry[:0], text[cut:]...)
			text = text[:cut]
		}
		lines := bytes.Count(text, []byte{'\n'})
		send(buf, text, line)
		line += lines
		if eof {
			return nil
		}
	}
}

// parseDomainLines parses the lines of text, the first being line number
// line, as FormatDomains.
func (p *listParser) parseDomainLines(text []byte, line int, name string) {
	for ; len(text) > 0; line++ {
		l := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(l) >= maxLine {
			p.problem(name, line, "line too long")
		} else if msg := p.parseLine(FormatDomains, l); msg != "" {
			p.problem(name, line, msg)
		}
	}
}
