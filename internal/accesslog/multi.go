package accesslog

// multi fans one entry out to several loggers, in order.
type multi []Logger

// Multi returns a Logger that passes each entry to every non-nil logger in order. With
// one logger it returns that logger; with none, a Logger that discards.
func Multi(loggers ...Logger) Logger {
	var m multi
	for _, l := range loggers {
		switch l := l.(type) {
		case nil:
		case multi:
			m = append(m, l...)
		default:
			m = append(m, l)
		}
	}
	if len(m) == 1 {
		return m[0]
	}
	return m
}

// Log implements Logger.
func (m multi) Log(e *Entry) {
	for _, l := range m {
		l.Log(e)
	}
}
