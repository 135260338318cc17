package rules

import "github.com/whenthen/whenthen/crm"

// Transitional aliases of the record model, which moved to package crm.
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
