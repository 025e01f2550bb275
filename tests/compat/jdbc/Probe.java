import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.postgresql.util.PSQLException;
import org.postgresql.util.ServerErrorMessage;

/**
 * Drives pgjdbc against a URL and prints one JSON object per line, so the Python tests
 * can compare what the driver sees directly and through the proxy.
 *
 * <p>Usage: java -cp postgresql.jar:DIR Probe SCENARIO JDBC_URL (scenarios: reads,
 * metadata, synced, synced-batch).
 */
public final class Probe {
    private final Connection conn;

    private Probe(Connection conn) {
        this.conn = conn;
    }

    public static void main(String[] args) throws Exception {
        try (Connection conn = DriverManager.getConnection(args[1])) {
            Probe probe = new Probe(conn);
            switch (args[0]) {
                case "reads" -> probe.reads();
                case "metadata" -> probe.metadata();
                case "synced" -> probe.synced();
                case "synced-batch" -> probe.syncedBatch();
                default -> throw new IllegalArgumentException(args[0]);
            }
        }
    }

    // -- pass-through ---------------------------------------------------------------

    private void reads() throws SQLException {
        PreparedStatement types = conn.prepareStatement("""
            SELECT 1::int AS i, 2::int8 AS l, 'x'::text AS t, 1.5::numeric AS n, true AS b,
                   NULL::text AS nul, '2024-01-02 03:04:05+00'::timestamptz AT TIME ZONE 'UTC' AS ts,
                   ARRAY[1, 2]::int[] AS arr, '{"a": 1}'::jsonb AS j, 'bytes'::bytea AS by,
                   '00000000-0000-0000-0000-000000000001'::uuid AS u, 1.25::float8 AS f,
                   '2024-01-02'::date AS d""");
        PreparedStatement described = conn.prepareStatement(
            "SELECT 1::int AS i, 'x'::text AS t, now() AS ts, ARRAY['a']::text[] AS arr");
        emit("types", "row", rows(types), "columns", columns(described));

        // Many executions of one PreparedStatement: with prepareThreshold=1 pgjdbc parses a
        // named server-side statement (S_n) once and binds it again and again.
        long total = 0;
        try (PreparedStatement ps = conn.prepareStatement("SELECT ?::int8 * 2, ?::text || '!'")) {
            for (int i = 0; i < 200; i++) {
                ps.setLong(1, i);
                ps.setString(2, "v" + i);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    total += rs.getLong(1) + rs.getString(2).length();
                }
            }
        }
        emit("prepared-reuse", "total", total, "server_statements", rows(conn.prepareStatement(
            "SELECT name, statement FROM pg_prepared_statements "
                + "WHERE statement LIKE 'SELECT $1::int8%' ORDER BY name")));

        try (Statement st = conn.createStatement()) {
            st.execute("CREATE TEMP TABLE items (id serial PRIMARY KEY, name text UNIQUE, qty int)");
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO items (name, qty) VALUES (?, ?)")) {
            for (int i = 0; i < 100; i++) {
                ps.setString(1, "item" + i);
                ps.setInt(2, i);
                ps.addBatch();
            }
            emit("batch", "counts", ints(ps.executeBatch()));
        }
        emitError("batch-failing", () -> {
            try (PreparedStatement ps = conn.prepareStatement("INSERT INTO items (name) VALUES (?)")) {
                for (String name : new String[] {"f0", "f1", "item1", "f3"}) {
                    ps.setString(1, name);
                    ps.addBatch();
                }
                ps.executeBatch();
            }
        });
        emit("after-batch-failing", "rows", rows(conn.prepareStatement(
            "SELECT name FROM items WHERE name LIKE 'f_' ORDER BY name")));
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO items (name, qty) VALUES (?, ?)", Statement.RETURN_GENERATED_KEYS)) {
            for (int i = 0; i < 3; i++) {
                ps.setString(1, "gen" + i);
                ps.setInt(2, i);
                ps.addBatch();
            }
            ps.executeBatch();
            emit("batch-generated-keys", "keys", rows(ps.getGeneratedKeys()));
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO items (name) VALUES (?)", new String[] {"id", "qty"})) {
            ps.setString(1, "one");
            emit("generated-keys", "count", ps.executeUpdate(), "keys", rows(ps.getGeneratedKeys()));
        }
        emit("returning", "rows", rows(conn.prepareStatement(
            "UPDATE items SET qty = qty + 1 WHERE id <= 3 RETURNING id, qty")));

        conn.setAutoCommit(false);
        exec("INSERT INTO items (name) VALUES ('rolled back')");
        conn.rollback();
        exec("INSERT INTO items (name) VALUES ('kept')");
        Savepoint sp = conn.setSavepoint();
        exec("INSERT INTO items (name) VALUES ('to savepoint')");
        conn.rollback(sp);
        conn.commit();
        emit("transaction", "names", rows(conn.prepareStatement(
            "SELECT name FROM items WHERE name IN ('rolled back', 'kept', 'to savepoint')")));

        // A cursor-based fetch: a named portal read 500 rows per Execute (PortalSuspended).
        long sum = 0;
        try (PreparedStatement ps = conn.prepareStatement("SELECT generate_series(1, 20000)")) {
            ps.setFetchSize(500);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    sum += rs.getLong(1);
                }
            }
        }
        conn.commit();
        emit("fetch-size", "sum", sum);

        emitError("error-division", () -> exec("SELECT 1 / 0"));
        conn.rollback();
        emitError("error-unique", () -> exec("INSERT INTO items (name) VALUES ('item1')"));
        emitError("error-aborted", () -> exec("SELECT 1"));
        conn.rollback();
        conn.setAutoCommit(true);
        emitError("error-syntax", () -> exec("SELEC 1"));
        emitError("cancel", () -> {
            try (Statement st = conn.createStatement()) {
                new Thread(() -> {
                    try {
                        Thread.sleep(300);
                        st.cancel();  // a CancelRequest on a new connection
                    } catch (InterruptedException | SQLException e) {
                        throw new IllegalStateException(e);
                    }
                }).start();
                st.execute("SELECT pg_sleep(10)");
            }
        });
        emit("after-errors", "rows", rows(conn.prepareStatement("SELECT count(*) FROM items")));
    }

    /** What DBeaver and other JDBC tools read through DatabaseMetaData. */
    private void metadata() throws SQLException {
        DatabaseMetaData md = conn.getMetaData();
        emit("product", "name", md.getDatabaseProductName(),
            "version", md.getDatabaseProductVersion());
        emit("schemas", "rows", rows(md.getSchemas()));
        emit("tables", "rows", rows(md.getTables(null, "hubspot", "%", null)));
        emit("columns", "rows", rows(md.getColumns(null, "hubspot", "contact", "%")));
        emit("primary-keys", "rows", rows(md.getPrimaryKeys(null, "hubspot", "contact")));
        emit("indexes", "rows", rows(md.getIndexInfo(null, "hubspot", "contact", false, false)));
        emit("foreign-keys", "rows", rows(md.getImportedKeys(null, "public", "users")));
        emit("functions", "count", rows(md.getFunctions(null, "pg_catalog", "lower")).size());
    }

    // -- synced writes (through the proxy only; the tests compare with the sandbox) --

    private void synced() throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO hubspot.contact (email, firstname) VALUES (?, ?) RETURNING id, email")) {
            for (int i = 0; i < 3; i++) {
                ps.setString(1, "j" + i + "@example.com");
                ps.setString(2, "J" + i);
                emit("insert-returning-" + i, "rows", rows(ps.executeQuery()));
            }
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO hubspot.contact (email) VALUES (?)", new String[] {"id"})) {
            ps.setString(1, "keys@example.com");
            emit("generated-keys", "count", ps.executeUpdate(), "keys", rows(ps.getGeneratedKeys()));
        }
        emitError("duplicate", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO hubspot.contact (email) VALUES (?) RETURNING id")) {
                ps.setString(1, "j0@example.com");
                ps.executeQuery();
            }
        });

        conn.setAutoCommit(false);
        Object userId = only(conn.prepareStatement(
            "INSERT INTO public.users (email, first_name) VALUES ('ada@example.com', 'Ada') "
                + "RETURNING id"));
        try (PreparedStatement ps = conn.prepareStatement(
                "INSERT INTO hubspot.contact (email, user_id) VALUES (?, ?) RETURNING id")) {
            ps.setString(1, "ada@example.com");
            ps.setInt(2, Integer.parseInt((String) userId));
            emit("signup", "user_id", userId, "contact", rows(ps.executeQuery()));
        }
        conn.commit();

        exec("INSERT INTO public.users (email) VALUES ('ghost@example.com')");
        emitError("duplicate-in-transaction", () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO hubspot.contact (email) VALUES (?) RETURNING id")) {
                ps.setString(1, "ada@example.com");
                ps.executeQuery();
            }
        });
        conn.rollback();
        conn.setAutoCommit(true);
        emit("after-rollback", "ghosts", only(conn.prepareStatement(
            "SELECT count(*) FROM public.users WHERE email = 'ghost@example.com'")));

        try (PreparedStatement ps = conn.prepareStatement(
                "UPDATE hubspot.contact SET lastname = ? WHERE email = ?")) {
            for (int i = 0; i < 3; i++) {
                ps.setString(1, "L" + i);
                ps.setString(2, "j" + i + "@example.com");
                emit("update-" + i, "count", ps.executeUpdate());
            }
        }
        try (PreparedStatement ps = conn.prepareStatement(
                "DELETE FROM hubspot.contact WHERE email = ?")) {
            ps.setString(1, "keys@example.com");
            emit("delete", "count", ps.executeUpdate());
        }
        emit("final", "rows", rows(conn.prepareStatement(
            "SELECT id, email, firstname, lastname FROM hubspot.contact ORDER BY email")));
    }

    private void syncedBatch() throws SQLException {
        insertBatch("batch", "b0", "b1", "b2", "b3", "b4");
        emit("after-batch", "rows", rows(conn.prepareStatement(
            "SELECT id, email FROM hubspot.contact ORDER BY email")));
        // A duplicate in the middle: on an ordinary table nothing of this batch would stay.
        insertBatch("batch-with-duplicate", "c0", "c1", "b2", "c3");
        conn.setAutoCommit(false);
        insertBatch("batch-in-transaction", "t0", "t1");
        conn.commit();
        conn.setAutoCommit(true);
        emit("final", "rows", rows(conn.prepareStatement(
            "SELECT id, email FROM hubspot.contact ORDER BY email")));
    }

    private void insertBatch(String step, String... names) {
        emitError(step, () -> {
            try (PreparedStatement ps = conn.prepareStatement(
                    "INSERT INTO hubspot.contact (email, firstname) VALUES (?, ?)")) {
                for (String name : names) {
                    ps.setString(1, name + "@example.com");
                    ps.setString(2, name.toUpperCase());
                    ps.addBatch();
                }
                emit(step + "-counts", "counts", ints(ps.executeBatch()));
            }
        });
    }

    // -- helpers ----------------------------------------------------------------------

    private interface Step {
        void run() throws SQLException;
    }

    private void exec(String sql) throws SQLException {
        try (Statement st = conn.createStatement()) {
            st.execute(sql);
        }
    }

    private static Object only(PreparedStatement ps) throws SQLException {
        return rows(ps).get(0).get(0);
    }

    private static List<List<Object>> rows(PreparedStatement ps) throws SQLException {
        try (ps) {
            return rows(ps.executeQuery());
        }
    }

    private static List<List<Object>> rows(ResultSet rs) throws SQLException {
        List<List<Object>> rows = new ArrayList<>();
        try (rs) {
            int n = rs.getMetaData().getColumnCount();
            while (rs.next()) {
                List<Object> row = new ArrayList<>();
                for (int i = 1; i <= n; i++) {
                    row.add(rs.getString(i));
                }
                rows.add(row);
            }
        }
        return rows;
    }

    private static List<String> columns(PreparedStatement ps) throws SQLException {
        List<String> columns = new ArrayList<>();
        try (ps) {
            ResultSetMetaData md = ps.getMetaData();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                columns.add(md.getColumnLabel(i) + ":" + md.getColumnTypeName(i) + ":"
                    + md.getColumnType(i) + ":" + md.getColumnClassName(i));
            }
        }
        return columns;
    }

    private static List<Integer> ints(int[] values) {
        return Arrays.stream(values).boxed().toList();
    }

    private void emitError(String step, Step body) {
        try {
            body.run();
            emit(step, "error", null);
        } catch (SQLException e) {
            SQLException cause = e instanceof BatchUpdateException && e.getNextException() != null
                ? e.getNextException() : e;
            ServerErrorMessage server = cause instanceof PSQLException p
                ? p.getServerErrorMessage() : null;
            emit(step, "error", cause.getSQLState(), "message", cause.getMessage(),
                "batch", e instanceof BatchUpdateException b ? ints(b.getUpdateCounts()) : null,
                "detail", server == null ? null : server.getDetail(),
                "table", server == null ? null : server.getTable());
        }
    }

    private static void emit(String step, Object... pairs) {
        StringBuilder out = new StringBuilder("{\"step\": ").append(json(step));
        for (int i = 0; i < pairs.length; i += 2) {
            out.append(", ").append(json(pairs[i])).append(": ").append(json(pairs[i + 1]));
        }
        System.out.println(out.append('}'));
    }

    private static String json(Object value) {
        if (value == null) {
            return "null";
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        if (value instanceof List<?> list) {
            List<String> items = new ArrayList<>();
            list.forEach(item -> items.add(json(item)));
            return "[" + String.join(", ", items) + "]";
        }
        StringBuilder out = new StringBuilder("\"");
        for (char c : value.toString().toCharArray()) {
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                default -> out.append(c < 0x20 ? String.format("\\u%04x", (int) c) : c);
            }
        }
        return out.append('"').toString();
    }
}
