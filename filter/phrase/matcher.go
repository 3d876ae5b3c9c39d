// Package phrase owns weighted phrase filtering in the style of e2guardian:
// phrase lists (e2guardian's <phrase><weight> syntax and a simple
// "weight phrase" format), a Matcher compiled from them (one Aho-Corasick
// automaton), a streaming Scanner that scores a body written in chunks of any
// size with constant memory, and Filter, which holds back a bounded prefix of
// a response body to decide before the first byte reaches the client.
//
// Text is normalised before matching, and phrases the same way: ASCII letters
// are lowercased (other bytes, UTF-8 included, compare exactly); control
// characters and the punctuation e2guardian turns into spaces (!"#$%&'()*+,-.
// :;=?@[\]^_`) become spaces; runs of spaces become one; and HTML tags (a '<'
// followed by a letter, '/', '!' or '?', up to the next '>') become one
// space, so "<b>Free</b>-<i>casino!</i>" reads " free casino ". Entities
// (&amp;) are not decoded. A phrase with a leading or trailing space matches
// only at a word boundary (a space, punctuation or a tag; the start and end of
// the body count as spaces).
//
// Counting follows e2guardian's default weightedphrasemode = 2: each entry
// counts once per page, however often it occurs, so a page repeating a mild
// phrase does not add up to a block; a page is blocked when its score is
// greater than the threshold (e2guardian's naughtynesslimit) or when it
// contains a banned entry.
package phrase

import (
	"cmp"
	"slices"
	"strings"
)

// Hit is one entry found on a page.
type Hit struct {
	Phrase   string // the entry's phrases, joined with "," for a combination
	Weight   int
	Banned   bool
	Category string
	Source   string // "FILE:LINE"
}

// Matcher is a compiled set of phrase lists. It is immutable and safe for
// concurrent use; each body gets its own Scanner.
type Matcher struct {
	ac       *automaton
	entries  []Entry
	byPat    [][]int32 // pattern → entries using it
	comboIdx []int32   // entry → index among combinations, -1 for single phrases
	combos   int
}

// Compile builds a Matcher from lists. The same phrase in several entries is
// matched once and counts for each entry.
func Compile(lists ...*List) *Matcher {
	m := &Matcher{}
	ids := map[string]int32{}
	var patterns []string
	for _, l := range lists {
		if l == nil {
			continue
		}
		for _, e := range l.Entries {
			ei := int32(len(m.entries))
			m.entries = append(m.entries, e)
			ci := int32(-1)
			if len(e.Phrases) > 1 {
				ci = int32(m.combos)
				m.combos++
			}
			m.comboIdx = append(m.comboIdx, ci)
			for _, p := range e.Phrases {
				id, ok := ids[p]
				if !ok {
					id = int32(len(patterns))
					ids[p] = id
					patterns = append(patterns, p)
					m.byPat = append(m.byPat, nil)
				}
				m.byPat[id] = append(m.byPat[id], ei)
			}
		}
	}
	m.ac = buildAutomaton(patterns)
	return m
}

// Len returns the number of entries.
func (m *Matcher) Len() int { return len(m.entries) }

// tag-parsing modes of a Scanner.
const (
	modeText = iota // ordinary text
	modeLT          // after '<', deciding whether a tag starts
	modeTag         // inside a tag, skipping to '>'
)

// maxTag bounds how many bytes a tag may swallow; a longer "tag" is taken to
// be text again (a stray '<' in plain text), so text is never lost for long.
const maxTag = 4096

// Scanner scores one body written to it in chunks. Its memory is fixed at
// creation (a bit per phrase and a counter per combination, plus the hits
// found): the automaton's state carries a phrase across Write calls, so no
// window of text is kept. A Scanner is not safe for concurrent use.
type Scanner struct {
	m      *Matcher
	state  int32
	mode   uint8
	space  bool // the last byte fed was a space
	tagLen int
	seen   []uint64 // patterns already found
	parts  []uint16 // combination → phrases found
	hits   []int32  // entries found, in order
	score  int
	banned bool
	closed bool
}

// NewScanner returns a Scanner at the start of a body.
func (m *Matcher) NewScanner() *Scanner {
	s := &Scanner{
		m:    m,
		seen: make([]uint64, (len(m.byPat)+63)/64),
	}
	if m.combos > 0 {
		s.parts = make([]uint16, m.combos)
	}
	s.feed(' ') // the start of the body is a word boundary
	return s
}

// Write scans p. It never fails and always returns len(p), nil.
func (s *Scanner) Write(p []byte) (int, error) {
	if s.closed {
		return len(p), nil
	}
	// The scanner's state lives in locals for the loop; feed is the same step
	// for the few bytes handled out of line.
	a := s.m.ac
	dense, cls, nc, nDense := a.dense, &a.cls, a.nc, a.nDense
	st, space, mode, tagLen := s.state, s.space, s.mode, s.tagLen
	for _, b := range p {
		switch mode {
		case modeText:
			if b == '<' {
				mode = modeLT
				continue
			}
		case modeLT:
			s.state, s.space = st, space
			if b|0x20 >= 'a' && b|0x20 <= 'z' || b == '/' || b == '!' || b == '?' {
				mode, tagLen = modeTag, 0
				s.feed(' ')
				st, space = s.state, s.space
				continue
			}
			s.feed('<')
			st, space = s.state, s.space
			if b == '<' {
				continue
			}
			mode = modeText
		case modeTag:
			if b == '>' {
				mode = modeText
			} else if tagLen++; tagLen > maxTag {
				mode = modeText
			}
			continue
		}
		c, keep := squeeze(b, &space)
		if !keep {
			continue
		}
		if st < nDense {
			st = dense[st*nc+int32(cls[c])]
		} else {
			st = a.step(st, cls[c])
		}
		if a.out[st] >= 0 {
			s.report(st)
		}
	}
	s.state, s.space, s.mode, s.tagLen = st, space, mode, tagLen
	return len(p), nil
}

// feed advances the automaton by one byte of text.
func (s *Scanner) feed(b byte) {
	c, keep := squeeze(b, &s.space)
	if !keep {
		return
	}
	s.state = s.m.ac.step(s.state, s.m.ac.cls[c])
	s.report(s.state)
}

// report records the patterns that end in state st.
func (s *Scanner) report(st int32) {
	a := s.m.ac
	for o := a.out[st]; o >= 0; o = a.out[a.fail[o]] {
		s.found(a.pat[o])
	}
}

// found records pattern id, once per body.
func (s *Scanner) found(id int32) {
	w, bit := id/64, uint64(1)<<(id%64)
	if s.seen[w]&bit != 0 {
		return
	}
	s.seen[w] |= bit
	for _, ei := range s.m.byPat[id] {
		if ci := s.m.comboIdx[ei]; ci >= 0 {
			s.parts[ci]++
			if int(s.parts[ci]) != len(s.m.entries[ei].Phrases) {
				continue
			}
		}
		e := &s.m.entries[ei]
		s.hits = append(s.hits, ei)
		s.score += e.Weight
		s.banned = s.banned || e.Banned
	}
}

// Close marks the end of the body (a word boundary, for phrases with a
// trailing space) and finishes a pending '<'. Writes after Close are ignored.
func (s *Scanner) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if s.mode == modeLT {
		s.feed('<')
	}
	s.mode = modeText
	s.feed(' ')
	return nil
}

// Score returns the sum of the weights of the entries found so far.
func (s *Scanner) Score() int { return s.score }

// Banned reports whether a banned entry (one without a weight) was found.
func (s *Scanner) Banned() bool { return s.banned }

// Blocked reports whether the body so far is over threshold (Score() >
// threshold) or Banned.
func (s *Scanner) Blocked(threshold int) bool { return s.banned || s.score > threshold }

// Top returns up to n hits, banned entries first, then by weight, highest
// first (ties in the order found); n ≤ 0 returns all.
func (s *Scanner) Top(n int) []Hit {
	idx := slices.Clone(s.hits)
	slices.SortStableFunc(idx, func(a, b int32) int {
		ea, eb := &s.m.entries[a], &s.m.entries[b]
		if ea.Banned != eb.Banned {
			if ea.Banned {
				return -1
			}
			return 1
		}
		return cmp.Compare(eb.Weight, ea.Weight)
	})
	if n > 0 && len(idx) > n {
		idx = idx[:n]
	}
	hits := make([]Hit, len(idx))
	for i, ei := range idx {
		e := &s.m.entries[ei]
		hits[i] = Hit{Phrase: strings.Join(e.Phrases, ","), Weight: e.Weight, Banned: e.Banned, Category: e.Category, Source: e.Source}
	}
	return hits
}
