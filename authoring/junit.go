package authoring

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// JUnit XML, as CI systems read it: one testsuite per test file, one
// testcase per test run, a failure (unmet expectations) or an error (the
// test could not run) with the report as its text. A file that could not
// be loaded is a suite with one errored testcase named after the file.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Errors   int         `xml:"errors,attr"`
	Time     string      `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitProblem `xml:"failure,omitempty"`
	Error     *junitProblem `xml:"error,omitempty"`
}

type junitProblem struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

// WriteJUnit writes the report as JUnit XML.
func (r *TestReport) WriteJUnit(w io.Writer) error {
	out := junitSuites{Name: "whenthen test"}
	var total time.Duration
	for _, f := range r.Files {
		s := junitSuite{Name: f.Path}
		var st time.Duration
		if f.Err != nil {
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, junitCase{Name: f.Path, Classname: f.Path, Time: seconds(0),
				Error: &junitProblem{Message: "the test file could not be loaded", Type: "load", Text: f.Err.Error()}})
		}
		for _, t := range f.Tests {
			c := junitCase{Name: t.Name, Classname: f.Path, Time: seconds(t.Duration)}
			st += t.Duration
			s.Tests++
			switch t.Status {
			case Failed:
				s.Failures++
				c.Failure = &junitProblem{Message: firstLine(t.Failures), Type: "expectation", Text: t.Text()}
			case Errored:
				s.Errors++
				c.Error = &junitProblem{Message: firstLine(t.Failures), Type: "error", Text: t.Text()}
			}
			s.Cases = append(s.Cases, c)
		}
		s.Time = seconds(st)
		total += st
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		out.Suites = append(out.Suites, s)
	}
	out.Time = seconds(total)
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func firstLine(fails []string) string {
	if len(fails) == 0 {
		return ""
	}
	s, _, _ := strings.Cut(fails[0], "\n")
	s = strings.TrimSuffix(s, ":")
	if len(fails) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(fails)-1)
	}
	return s
}
