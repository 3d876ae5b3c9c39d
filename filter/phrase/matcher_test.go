package phrase

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *List {
	t.Helper()
	l, err := Parse(strings.NewReader(src), "test")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func scan(m *Matcher, text string) *Scanner {
	s := m.NewScanner()
	s.Write([]byte(text))
	s.Close()
	return s
}

func TestScoring(t *testing.T) {
	m := Compile(mustParse(t, `
<casino><40>
< bet ><15>
<free spins><30>
<poker>,<tournament><50>
<science><-20>
<forbidden word>
`))
	cases := []struct {
		text   string
		score  int
		banned bool
	}{
		{"a quiet page about gardening", 0, false},
		{"Welcome to the CASINO", 40, false},
		{"casino casino casino casino", 40, false}, // once per page
		{"Claim your <b>FREE</b>\n\n\t  spins", 30, false},
		{"free<br/>spins", 30, false},   // a tag is a space
		{"free &nbsp; spins", 0, false}, // entities are not decoded
		{"place a bet now", 15, false},
		{"place a bet, now", 15, false}, // punctuation is a boundary
		{"Free-spins!!!", 30, false},
		{"free_spins", 30, false},
		{"bet", 15, false},             // body start and end are boundaries
		{"alphabet betting", 0, false}, // word boundaries
		{"<p>bet</p>", 15, false},
		{"poker night", 0, false}, // half a combination
		{"poker tournament", 50, false},
		{"tournament ... poker ... poker", 50, false},
		{"casino science", 20, false},
		{"science", -20, false},
		{"a forbidden   WORD here", 0, true},
		{"a < b and c > d casino", 40, false},        // '<' not followed by a letter is text
		{"if a<b then casino>", 0, false},            // "<b then casino>" reads as a tag
		{"<script>var casino=1</script>", 40, false}, // script text is text
		{"caf\u00e9 casino", 40, false},
	}
	for _, c := range cases {
		s := scan(m, c.text)
		if s.Score() != c.score || s.Banned() != c.banned {
			t.Errorf("%q: score %d banned %v, want %d %v (hits %+v)", c.text, s.Score(), s.Banned(), c.score, c.banned, s.Top(0))
		}
	}
}

func TestTopAndBlocked(t *testing.T) {
	m := Compile(mustParse(t, "#listcategory: \"Gambling\"\n<casino><40>\n<free spins><30>\n<jackpot><60>\n<science><-20>\n"),
		mustParse(t, "<forbidden>\n"))
	s := scan(m, "science! casino jackpot forbidden free spins")
	top := s.Top(3)
	want := []Hit{
		{Phrase: "forbidden", Banned: true, Source: "test:1"},
		{Phrase: "jackpot", Weight: 60, Category: "Gambling", Source: "test:4"},
		{Phrase: "casino", Weight: 40, Category: "Gambling", Source: "test:2"},
	}
	if !reflect.DeepEqual(top, want) {
		t.Fatalf("Top(3) = %+v\nwant %+v", top, want)
	}
	if all := s.Top(0); len(all) != 5 || all[4].Phrase != "science" {
		t.Fatalf("Top(0) = %+v", all)
	}
	if !s.Blocked(1000) {
		t.Fatal("banned phrase did not block")
	}
	s2 := scan(m, "casino jackpot")
	if s2.Blocked(100) || !s2.Blocked(99) {
		t.Fatalf("score 100: Blocked(100) must be false and Blocked(99) true")
	}
}

func TestSharedPhrase(t *testing.T) {
	m := Compile(mustParse(t, "<casino><40>\n"), mustParse(t, "<casino><5>\n<casino>,<poker><7>\n"))
	if got := scan(m, "casino poker").Score(); got != 52 {
		t.Fatalf("score %d, want 52 (each entry counts)", got)
	}
}

// TestChunkBoundaries writes each text split at every position, and byte by
// byte, and expects the score of the whole.
func TestChunkBoundaries(t *testing.T) {
	m := Compile(mustParse(t, "<free spins><30>\n< bet ><15>\n<casino>,<poker><50>\n<forbidden word>\n"))
	texts := []string{
		"claim <b>free</b>   spins, place a bet, casino and poker",
		"<p>forbidden\r\n word</p>",
		"a<b>bet</b>",
		"x < y bet",
	}
	for _, text := range texts {
		whole := scan(m, text)
		for i := 0; i <= len(text); i++ {
			s := m.NewScanner()
			s.Write([]byte(text[:i]))
			s.Write([]byte(text[i:]))
			s.Close()
			if s.Score() != whole.Score() || s.Banned() != whole.Banned() {
				t.Fatalf("%q split at %d: %d %v, whole %d %v", text, i, s.Score(), s.Banned(), whole.Score(), whole.Banned())
			}
		}
		s := m.NewScanner()
		for i := 0; i < len(text); i++ {
			s.Write([]byte{text[i]})
		}
		s.Close()
		if s.Score() != whole.Score() {
			t.Fatalf("%q byte by byte: %d, whole %d", text, s.Score(), whole.Score())
		}
	}
}

// TestAgainstNaive compares the automaton with strings.Contains on random
// phrases and texts over a small alphabet, where overlaps and shared suffixes
// are frequent.
func TestAgainstNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = "abc "[rng.IntN(4)]
		}
		return string(b)
	}
	for round := 0; round < 200; round++ {
		var src strings.Builder
		var phrases []string
		seen := map[string]bool{}
		for len(phrases) < 1+rng.IntN(20) {
			p := strings.Join(strings.Fields(word(1+rng.IntN(6))), " ")
			if p == "" || seen[p] {
				continue
			}
			seen[p] = true
			phrases = append(phrases, p)
			fmt.Fprintf(&src, "<%s><%d>\n", p, 1<<len(phrases))
		}
		m := Compile(mustParse(t, src.String()))
		for k := 0; k < 20; k++ {
			text := word(rng.IntN(60))
			norm := " " + strings.Join(strings.Fields(text), " ") + " "
			want := 0
			for i, p := range phrases {
				if strings.Contains(norm, p) {
					want += 1 << (i + 1)
				}
			}
			if got := scan(m, text).Score(); got != want {
				t.Fatalf("phrases %q text %q: score %b, want %b", phrases, text, got, want)
			}
		}
	}
}

func TestEmptyMatcher(t *testing.T) {
	m := Compile()
	if s := scan(m, "anything <b>at</b> all"); s.Score() != 0 || s.Banned() || len(s.Top(5)) != 0 {
		t.Fatal("empty matcher found something")
	}
	if Compile(nil).Len() != 0 {
		t.Fatal("nil list added entries")
	}
}
