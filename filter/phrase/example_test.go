package phrase_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/portcullis/portcullis/filter/phrase"
)

func ExampleMatcher_NewScanner() {
	list, err := phrase.Parse(strings.NewReader(`
#listcategory: "Gambling"
<casino><40>
< bet ><15>
<poker>,<tournament><50>
<science><-20>
`), "gambling.txt")
	if err != nil {
		fmt.Println(err)
		return
	}
	m := phrase.Compile(list)
	s := m.NewScanner()
	// A phrase split between two writes is still found.
	s.Write([]byte("<h1>Poker tourna"))
	s.Write([]byte("ment</h1> at the CASINO: place a bet now, casino!"))
	s.Close()
	fmt.Println("score:", s.Score(), "blocked at 60:", s.Blocked(60))
	for _, h := range s.Top(2) {
		fmt.Printf("%s (%d, %s, %s)\n", h.Phrase, h.Weight, h.Category, h.Source)
	}
	// Output:
	// score: 105 blocked at 60: true
	// poker,tournament (50, Gambling, gambling.txt:5)
	// casino (40, Gambling, gambling.txt:3)
}

func ExampleFilter() {
	list, _ := phrase.Parse(strings.NewReader("<jackpot><80>\n<free spins><40>\n"), "list")
	m := phrase.Compile(list)
	for _, page := range []string{"<p>Maths homework</p>", "<p>JACKPOT! Free spins!</p>"} {
		d, body, err := phrase.Filter(io.NopCloser(strings.NewReader(page)), m, phrase.Options{Threshold: 100})
		if err != nil {
			fmt.Println(err)
			return
		}
		if d.Blocked {
			fmt.Println("blocked, score", d.Score, "top:", d.Hits[0].Phrase)
			continue
		}
		passed, _ := io.ReadAll(body)
		body.Close()
		fmt.Println("passed:", string(passed))
	}
	// Output:
	// passed: <p>Maths homework</p>
	// blocked, score 120 top: jackpot
}
