"""`ods backup create|restore`: one file holding the database, the share dir and the secrets.

`archive` owns the file format (a tar with a manifest), `tables` the logical
export and load of the database, `progress` the lines on the terminal;
`create` and `restore` put them together.
"""
