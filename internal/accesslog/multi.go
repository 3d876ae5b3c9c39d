package accesslog

// multi fans one entry out to several loggers, in order.
type multi struct {
	loggers []Logger
	// What WantsDetail asks, worked out once: always when a logger is no
	// DetailLogger, else the DetailLoggers' own answers.
	always  bool
	details []DetailLogger
}

// Multi returns a Logger that passes each entry to every non-nil logger in order. With
// one logger it returns that logger; with none, a Logger that discards.
func Multi(loggers ...Logger) Logger {
	var m multi
	for _, l := range loggers {
		switch l := l.(type) {
		case nil:
		case *multi:
			m.loggers = append(m.loggers, l.loggers...)
		default:
			m.loggers = append(m.loggers, l)
		}
	}
	if len(m.loggers) == 1 {
		return m.loggers[0]
	}
	for _, l := range m.loggers {
		if d, ok := l.(DetailLogger); ok {
			m.details = append(m.details, d)
		} else {
			m.always = true
		}
	}
	return &m
}

// Log implements Logger.
func (m *multi) Log(e *Entry) {
	for _, l := range m.loggers {
		l.Log(e)
	}
}

// WantsDetail implements DetailLogger: whether any of the loggers does.
func (m *multi) WantsDetail() bool {
	if m.always {
		return true
	}
	for _, d := range m.details {
		if d.WantsDetail() {
			return true
		}
	}
	return false
}
