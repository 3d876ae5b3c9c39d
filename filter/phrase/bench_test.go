package phrase

import (
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// benchWords is a small vocabulary for generated lists and pages.
var benchWords = strings.Fields(`the school pupils teacher lesson maths science history garden music
casino poker bet jackpot spins free online game play win money card table night fair class book
library sport football report project homework answer question village river mountain city
computer keyboard screen network proxy filter weather summer winter holiday friend family`)

// benchMatcher compiles n generated entries of one to three words.
func benchMatcher(b *testing.B, n int) *Matcher {
	rng := rand.New(rand.NewPCG(7, 7))
	var src strings.Builder
	for i := 0; i < n; i++ {
		k := 1 + rng.IntN(3)
		ws := make([]string, k)
		for j := range ws {
			ws[j] = benchWords[rng.IntN(len(benchWords))]
		}
		fmt.Fprintf(&src, "<%s%d><%d>\n", strings.Join(ws, " "), i, rng.IntN(60)-10)
	}
	return Compile(mustParse(b, src.String()))
}

// benchPage returns about size bytes of HTML built from the vocabulary.
func benchPage(size int) []byte {
	rng := rand.New(rand.NewPCG(9, 9))
	var sb strings.Builder
	for sb.Len() < size {
		sb.WriteString("<p class=\"text\">")
		for i := 0; i < 12; i++ {
			sb.WriteString(benchWords[rng.IntN(len(benchWords))])
			sb.WriteByte(' ')
		}
		sb.WriteString("</p>\n")
	}
	return []byte(sb.String())
}

func BenchmarkScanner(b *testing.B) {
	for _, n := range []int{100, 5000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := benchMatcher(b, n)
			page := benchPage(256 << 10)
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				s := m.NewScanner()
				for off := 0; off < len(page); off += 32 << 10 {
					s.Write(page[off:min(off+32<<10, len(page))])
				}
				s.Close()
			}
		})
	}
}

func BenchmarkFilter(b *testing.B) {
	m := benchMatcher(b, 5000)
	page := benchPage(64 << 10)
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	for b.Loop() {
		_, rc, err := Filter(io.NopCloser(strings.NewReader(string(page))), m, Options{Threshold: 1 << 30})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, rc)
	}
}

func BenchmarkCompile(b *testing.B) {
	rng := rand.New(rand.NewPCG(7, 7))
	var src strings.Builder
	for i := 0; i < 5000; i++ {
		fmt.Fprintf(&src, "<%s %s%d><%d>\n", benchWords[rng.IntN(len(benchWords))], benchWords[rng.IntN(len(benchWords))], i, 10)
	}
	l := mustParse(b, src.String())
	b.ReportAllocs()
	for b.Loop() {
		Compile(l)
	}
}
