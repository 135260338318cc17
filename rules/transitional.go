package rules

import "github.com/whenthen/whenthen/crm"

// Transitional aliases of the record model, which moved to package crm,
// and of the loaders that became ReadFiles and Compile.
// They keep the rest of the tree building while the refactor of issue 11
// is merged, and are deleted at its end: use package crm.
type (
	Schema          = crm.Schema
	Object          = crm.Object
	Field           = crm.Field
	Record          = crm.Record
	Limits          = crm.Limits
	Kind            = crm.Kind
	FieldValueError = crm.FieldValueError
)

const (
	ObjAccount     = crm.ObjAccount
	ObjOpportunity = crm.ObjOpportunity
	ObjLead        = crm.ObjLead
	ObjContact     = crm.ObjContact
	KindBool       = crm.KindBool
	KindDouble     = crm.KindDouble
	KindDynMap     = crm.KindDynMap
	KindInt        = crm.KindInt
	KindObjectList = crm.KindObjectList
	KindString     = crm.KindString
	KindStringList = crm.KindStringList
	KindTimestamp  = crm.KindTimestamp
)

var (
	CRMObjects    = crm.CRMObjects
	DefaultLimits = crm.DefaultLimits
	DefaultSchema = crm.DefaultSchema
	LoadSchema    = crm.LoadSchema
	ParseSchema   = crm.ParseSchema
	ParseTime     = crm.ParseTime
)

// Load reads and compiles the automation files under paths.
//
// Deprecated: transitional; use ReadFiles and Compile.
func (c *Compiler) Load(paths ...string) (*Set, error) {
	srcs, err := ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	return c.Compile(srcs)
}

// LoadSources compiles automation files given as content.
//
// Deprecated: transitional; use Compile.
func (c *Compiler) LoadSources(srcs []Source) (*Set, error) { return c.Compile(srcs) }
