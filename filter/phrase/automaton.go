package phrase

// maxDense bounds the dense part of an automaton, in transitions (4 bytes
// each): 1<<18 is 1 MiB, which keeps it mostly in cache.
const maxDense = 1 << 18

// automaton is an Aho-Corasick automaton over normalised bytes, stored in two
// parts. Bytes are first mapped to classes (one per byte value that occurs in
// some pattern, one for all others). States are numbered breadth first; the
// first nDense states — every state up to some depth, as many as fit in
// maxDense transitions — have a dense row of complete DFA transitions, and
// deeper states keep sparse trie edges and follow failure links, which lead
// back into the dense part within a few steps. Ordinary text spends most of
// its time in the dense part, and memory stays bounded for large lists.
type automaton struct {
	cls    [256]uint8 // byte → class
	nc     int32      // number of classes
	nDense int32
	dense  []int32 // dense[s*nc+class], s < nDense
	first  []int32 // sparse edges of state s: label/next[first[s]:first[s+1]], sorted by label
	label  []uint8 // class of an edge
	next   []int32
	fail   []int32
	out    []int32 // nearest state in s, fail(s), ... that ends a pattern; -1 if none
	pat    []int32 // pattern ending at s; -1 if none
}

type trieEdge struct {
	c  uint8
	to int32
}

// buildAutomaton builds the automaton of patterns (non-empty, distinct).
func buildAutomaton(patterns []string) *automaton {
	a := &automaton{}
	// Byte classes.
	var present [256]bool
	for _, p := range patterns {
		for i := 0; i < len(p); i++ {
			present[p[i]] = true
		}
	}
	n := int32(0)
	for b := range 256 {
		if present[b] {
			a.cls[b] = uint8(n)
			n++
		}
	}
	a.nc = n
	if n < 256 {
		for b := range 256 {
			if !present[b] {
				a.cls[b] = uint8(n)
			}
		}
		a.nc = n + 1
	}
	// The trie, numbered in insertion order.
	children := [][]trieEdge{nil}
	depth := []int32{0}
	pat := []int32{-1}
	for id, p := range patterns {
		s := int32(0)
		for i := 0; i < len(p); i++ {
			c := a.cls[p[i]]
			to := int32(-1)
			for _, e := range children[s] {
				if e.c == c {
					to = e.to
					break
				}
			}
			if to < 0 {
				to = int32(len(children))
				children = append(children, nil)
				depth = append(depth, depth[s]+1)
				pat = append(pat, -1)
				children[s] = append(children[s], trieEdge{c, to})
			}
			s = to
		}
		pat[s] = int32(id)
	}
	// Renumber breadth first, so states up to a depth form a prefix.
	order := []int32{0}
	for i := 0; i < len(order); i++ {
		for _, e := range children[order[i]] {
			order = append(order, e.to)
		}
	}
	total := int32(len(order))
	newID := make([]int32, total)
	for i, old := range order {
		newID[old] = int32(i)
	}
	a.first = make([]int32, total+1)
	a.fail = make([]int32, total)
	a.out = make([]int32, total)
	a.pat = make([]int32, total)
	for i, old := range order {
		a.pat[i] = pat[old]
		row := children[old]
		for x := 1; x < len(row); x++ {
			for y := x; y > 0 && row[y].c < row[y-1].c; y-- {
				row[y], row[y-1] = row[y-1], row[y]
			}
		}
		a.first[i] = int32(len(a.label))
		for _, e := range row {
			a.label = append(a.label, e.c)
			a.next = append(a.next, newID[e.to])
		}
	}
	a.first[total] = int32(len(a.label))
	// The dense prefix: whole depth levels while they fit.
	a.nDense = 1
	for i := int32(1); i < total; i++ {
		if depth[order[i]] != depth[order[i-1]] { // a level ends before i
			if int64(i)*int64(a.nc) > maxDense {
				break
			}
			a.nDense = i
		}
		if i == total-1 && int64(total)*int64(a.nc) <= maxDense {
			a.nDense = total
		}
	}
	a.dense = make([]int32, int(a.nDense)*int(a.nc))
	// Failure links, output links and dense rows, breadth first (states are
	// already in that order, so every fail target is computed before use).
	a.out[0] = -1
	for s := int32(0); s < total; s++ {
		if s > 0 {
			if a.pat[s] >= 0 {
				a.out[s] = s
			} else {
				a.out[s] = a.out[a.fail[s]]
			}
		}
		for i := a.first[s]; i < a.first[s+1]; i++ {
			if s == 0 {
				a.fail[a.next[i]] = 0
			} else {
				a.fail[a.next[i]] = a.step(a.fail[s], a.label[i])
			}
		}
		if s < a.nDense {
			row := a.dense[int(s)*int(a.nc) : int(s+1)*int(a.nc)]
			if s > 0 {
				copy(row, a.dense[int(a.fail[s])*int(a.nc):int(a.fail[s]+1)*int(a.nc)])
			}
			for i := a.first[s]; i < a.first[s+1]; i++ {
				row[a.label[i]] = a.next[i]
			}
		}
	}
	return a
}

// step returns the state after reading class c in state s. During the build
// it is only called on states whose dense row or failure link is complete.
func (a *automaton) step(s int32, c uint8) int32 {
	for s >= a.nDense {
		for i, end := a.first[s], a.first[s+1]; i < end; i++ {
			if l := a.label[i]; l >= c {
				if l == c {
					return a.next[i]
				}
				break
			}
		}
		s = a.fail[s]
	}
	return a.dense[s*a.nc+int32(c)]
}
