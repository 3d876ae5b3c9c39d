package config

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/portcullis/portcullis/internal/config/field"
)

// validatePolicy checks the rules part and what only the config package can see:
// files on disk and references from rules to other sections.
func (f *File) validatePolicy() []field.Error {
	p := f.Policy
	errs := p.Config.Validate()
	for name, l := range p.Lists {
		if l == nil || l.Path == "" {
			continue
		}
		path := f.Resolve(l.Path)
		st, err := os.Stat(path)
		switch {
		case err != nil:
			errs = append(errs, field.Errorf("lists."+name+".path", "cannot read %s: %v", path, unwrapPathErr(err)))
		case l.Format == "ut1" && !st.IsDir():
			errs = append(errs, field.Errorf("lists."+name+".path", "%s is not a folder (a ut1 list is a folder of CATEGORY/domains files)", path))
		case l.Format == "ut1":
			for i, c := range l.Categories {
				if _, err := os.Stat(filepath.Join(path, c)); err != nil {
					errs = append(errs, field.Errorf(fmt.Sprintf("lists.%s.categories[%d]", name, i), "no category folder %s", filepath.Join(path, c)))
				}
			}
		case st.IsDir():
			errs = append(errs, field.Errorf("lists."+name+".path", "%s is a folder, not a list file", path))
		}
	}
	if fw := p.Forward; fw != nil && fw.Auth.HtpasswdFile != "" {
		errs = append(errs, f.readable("forward.auth.htpasswd_file", fw.Auth.HtpasswdFile)...)
		if fw.Auth.GroupFile != "" {
			errs = append(errs, f.readable("forward.auth.group_file", fw.Auth.GroupFile)...)
		}
	}
	if fw := p.Forward; fw != nil && fw.BlockPage.Template != "" {
		errs = append(errs, f.readable("forward.block_page.template", fw.BlockPage.Template)...)
	}
	if cl := p.Cluster; cl != nil {
		if cl.Redis.PasswordFile != "" {
			errs = append(errs, f.readable("cluster.redis.password_file", cl.Redis.PasswordFile)...)
		}
		if cl.Redis.TLS != nil && cl.Redis.TLS.CAFile != "" {
			errs = append(errs, f.readable("cluster.redis.tls.ca_file", cl.Redis.TLS.CAFile)...)
		}
	}
	if fw := p.Forward; fw != nil && fw.Auth.LDAP != nil {
		if l := fw.Auth.LDAP; l.BindPasswordFile != "" {
			errs = append(errs, f.readable("forward.auth.ldap.bind_password_file", l.BindPasswordFile)...)
		}
		if l := fw.Auth.LDAP; l.CAFile != "" {
			errs = append(errs, f.readable("forward.auth.ldap.ca_file", l.CAFile)...)
		}
	}
	errs = append(errs, f.validateRefs()...)
	errs = append(errs, f.validateListeners()...)
	return errs
}

// readable reports, at path, a file the policy names (relative to the policy file)
// that cannot be opened for reading or is a folder.
func (f *File) readable(path, name string) []field.Error {
	full := f.Resolve(name)
	fd, err := os.Open(full)
	if err != nil {
		return []field.Error{field.Errorf(path, "cannot read %s: %v", full, unwrapPathErr(err))}
	}
	defer fd.Close()
	if st, err := fd.Stat(); err == nil && st.IsDir() {
		return []field.Error{field.Errorf(path, "%s is a folder, not a file", full)}
	}
	return nil
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
