# Drives ruby-pg and ActiveRecord against a postgresql:// URL and prints one JSON object
# per line, so the Python tests can compare what the client sees directly and through
# the proxy. Usage: ruby probe.rb SCENARIO URL (scenarios: pg, pg-synced, ar, ar-synced,
# ar-synced-bulk, ar-synced-all-columns).
require "json"
require "pg"

def emit(step, **fields)
  puts JSON.generate({ step: step, **fields })
end

# Runs the block and reports the error it raises (or error: nil).
def emit_error(step)
  yield
  emit(step, error: nil)
rescue StandardError => e
  pg = e.is_a?(PG::Error) ? e : e.cause
  result = pg.respond_to?(:result) ? pg.result : nil
  emit(step, error: result&.error_field(PG::PG_DIAG_SQLSTATE), class: e.class.name,
             message: result&.error_field(PG::PG_DIAG_MESSAGE_PRIMARY),
             detail: result&.error_field(PG::PG_DIAG_MESSAGE_DETAIL),
             table: result&.error_field(PG::PG_DIAG_TABLE_NAME))
end

def pg_scenario(conn)
  emit("types", rows: conn.exec(<<~SQL).values, fields: conn.exec("SELECT 1::int AS i, 'x'::text AS t").fields)
    SELECT 1::int, 2::int8, 'x'::text, 1.5::numeric, true, NULL::text,
           '2024-01-02 03:04:05+00'::timestamptz AT TIME ZONE 'UTC', ARRAY[1, 2]::int[],
           '{"a": 1}'::jsonb, 'bytes'::bytea, 1.25::float8
  SQL
  emit("exec-params", rows: conn.exec_params("SELECT $1::int + 1, $2::text", [41, "p"]).values)
  binary = conn.exec_params("SELECT $1::int8 AS n", [7], 1)
  emit("exec-params-binary", value: binary.getvalue(0, 0).unpack1("q>"), format: binary.fformat(0))

  conn.prepare("double", "SELECT $1::int8 * 2")
  total = (0...200).sum { |i| conn.exec_prepared("double", [i]).getvalue(0, 0).to_i }
  emit("prepared", total: total,
                   statements: conn.exec("SELECT name FROM pg_prepared_statements").column_values(0))

  conn.exec("CREATE TEMP TABLE items (id serial PRIMARY KEY, name text UNIQUE)")
  conn.transaction { conn.exec("INSERT INTO items (name) VALUES ('kept')") }
  emit_error("transaction-rollback") do
    conn.transaction do
      conn.exec("INSERT INTO items (name) VALUES ('rolled back')")
      conn.exec("INSERT INTO items (name) VALUES ('kept')")
    end
  end
  emit("transaction", names: conn.exec("SELECT name FROM items ORDER BY id").column_values(0),
                      status: conn.transaction_status)
  emit_error("error-division") { conn.exec("SELECT 1 / 0") }
  emit_error("error-params") { conn.exec_params("SELECT $1::int", ["x"]) }
  emit_error("error-prepared") { conn.exec_prepared("missing", []) }
  emit("after-errors", value: conn.exec("SELECT count(*) FROM items").getvalue(0, 0))
end

def pg_synced_scenario(conn)
  result = conn.exec_params(
    "INSERT INTO hubspot.contact (email, firstname) VALUES ($1, $2) RETURNING id, email",
    ["r0@example.com", "R0"]
  )
  emit("exec-params-insert", rows: result.values, tag: result.cmd_status)
  conn.prepare("insert_contact", "INSERT INTO hubspot.contact (email) VALUES ($1) RETURNING id")
  (1..3).each do |i|
    emit("prepared-insert-#{i}", rows: conn.exec_prepared("insert_contact", ["r#{i}@example.com"]).values)
  end
  emit_error("duplicate") { conn.exec_prepared("insert_contact", ["r1@example.com"]) }
  emit_error("duplicate-in-transaction") do
    conn.transaction do
      conn.exec("INSERT INTO public.users (email) VALUES ('ghost@example.com')")
      conn.exec_prepared("insert_contact", ["r2@example.com"])
    end
  end
  emit("after-rollback", ghosts: conn.exec("SELECT count(*) FROM public.users").getvalue(0, 0))
  result = conn.exec_params("UPDATE hubspot.contact SET lastname = $1 WHERE email = $2",
                            ["Upd", "r0@example.com"])
  emit("update", tag: result.cmd_status)
  emit("delete", tag: conn.exec("DELETE FROM hubspot.contact WHERE email = 'r3@example.com'").cmd_status)
  emit_error("refused") { conn.exec("TRUNCATE hubspot.contact") }
end

def active_record(url)
  require "active_record"
  ActiveRecord::Base.establish_connection(url)
  sent = []
  ActiveSupport::Notifications.subscribe("sql.active_record") do |*, payload|
    sent << payload[:sql] unless payload[:name] == "SCHEMA"
  end
  Object.const_set(:Org, Class.new(ActiveRecord::Base) { has_many :users })
  Object.const_set(:User, Class.new(ActiveRecord::Base) { belongs_to :org, optional: true })
  Object.const_set(:Contact, Class.new(ActiveRecord::Base) do
    self.table_name = "hubspot.contact"
    self.primary_key = "id"
    belongs_to :user, optional: true
  end)
  sent
end

def ar_scenario(sent)
  org = Org.create!(name: "Acme")
  ada = User.create!(email: "ada@example.com", first_name: "Ada", org: org)
  User.create!(email: "bob@example.com", first_name: "Bob")
  emit("create", id: ada.id, org_id: ada.org_id)
  emit("query", emails: User.where("email LIKE ?", "%@example.com").order(:email).pluck(:email),
                joined: User.joins(:org).where(orgs: { name: "Acme" }).pluck(:first_name),
                count: User.count, found: User.find(ada.id).first_name)
  ada.update!(last_name: "Lovelace")
  emit("update", last_name: User.find_by(email: "ada@example.com").last_name)
  emit_error("duplicate") { User.create!(email: "ada@example.com") }
  User.transaction do
    User.create!(email: "rolled@example.com")
    raise ActiveRecord::Rollback
  end
  emit("rollback", count: User.where(email: "rolled@example.com").count)
  emit("sent", sql: sent)
end

def ar_synced_scenario(sent)
  user = User.create!(email: "ada@example.com", first_name: "Ada")
  sent.clear
  contact = Contact.create!(email: "ada@example.com", firstname: "Ada", user: user)
  emit("create", id: contact.id, sent: sent.dup)
  reloaded = Contact.find(contact.id)
  emit("find", email: reloaded.email, user_id: reloaded.user_id, stamped: !reloaded.createdate.nil?)
  sent.clear
  reloaded.update!(lastname: "Lovelace")
  emit("update", sent: sent.dup, lastname: Contact.find(contact.id).lastname)
  other = Contact.create!(email: "gone@example.com")
  sent.clear
  other.destroy!
  emit("destroy", sent: sent.dup, count: Contact.count)
  emit_error("duplicate") do
    User.transaction do
      User.create!(email: "ghost@example.com")
      Contact.create!(email: "ada@example.com")
    end
  end
  emit("after-rollback", ghosts: User.where(email: "ghost@example.com").count)
  emit_error("client-id") { Contact.create!(id: "123", email: "id@example.com") }
end

# Bulk class methods: insert_all!/insert_all/upsert_all send one multi-row INSERT with
# literal values; update_all/delete_all one UPDATE/DELETE.
def ar_synced_bulk_scenario(sent)
  emit("insert_all!", rows: Contact.insert_all!([{ email: "a@example.com" }, { email: "b@example.com" }]).rows)
  emit("insert_all", rows: Contact.insert_all([{ email: "a@example.com" }, { email: "c@example.com" }]).rows)
  emit("insert_all-unique_by", rows: Contact.insert_all([{ email: "a@example.com" }, { email: "d@example.com" }],
                                                        unique_by: :email).rows)
  emit("upsert_all", rows: Contact.upsert_all([{ email: "a@example.com", firstname: "A" },
                                               { email: "e@example.com", firstname: "E" }], unique_by: :email).rows)
  emit("update_all", count: Contact.where(email: %w[a@example.com b@example.com]).update_all(lastname: "X"))
  emit("delete_all", count: Contact.where(email: "b@example.com").delete_all)
  emit("sent", sql: sent.grep(/\A(INSERT|UPDATE|DELETE)/))
end

# Rails 7 apps default to partial_inserts = false (6.1: partial_writes): every column is
# sent, NULL when unset (the id is still left out while nil).
def ar_synced_all_columns_scenario(sent)
  ActiveRecord::Base.partial_writes = false
  emit_error("create") { Contact.create!(email: "all@example.com") }
  emit("sent", sql: sent.grep(/INSERT/))
end

scenario, url = ARGV
case scenario
when "pg" then pg_scenario(PG.connect(url))
when "pg-synced" then pg_synced_scenario(PG.connect(url))
when "ar" then ar_scenario(active_record(url))
when "ar-synced" then ar_synced_scenario(active_record(url))
when "ar-synced-bulk" then ar_synced_bulk_scenario(active_record(url))
when "ar-synced-all-columns" then ar_synced_all_columns_scenario(active_record(url))
else abort "unknown scenario #{scenario}"
end
