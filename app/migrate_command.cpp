#include "migrate_command.hpp"

#include <cstdlib>
#include <iostream>

#include "ndrguard/quarantine/database.hpp"

namespace ndrguard::app {

const char* const migrate_usage =
    "usage: ndrguard migrate [--db CONNINFO] [--sql-dir DIR]\n"
    "\n"
    "Applies the schema migrations (sql/NNNN_name.sql) that the database does not have yet, in\n"
    "order, in one transaction, under an advisory lock (safe when several instances start at\n"
    "once). Running it again changes nothing.\n"
    "\n"
    "  --db CONNINFO   libpq connection string, e.g. \"host=/run/ndrguard dbname=ndrguard\"\n"
    "                  (default: $NDRGUARD_DB, else libpq's own defaults and PG* variables)\n"
    "  --sql-dir DIR   where the migrations are (default: " NDRGUARD_DEFAULT_SQL_DIR ")\n"
    "  -h, --help      show this text\n"
    "\n"
    "Exit status: 0 up to date, 1 database error (message on stderr), 2 usage error.\n";

int run_migrate(const std::vector<std::string>& args) {
    const char* env_db = std::getenv("NDRGUARD_DB");
    std::string conninfo = env_db ? env_db : "";
    std::string sql_dir = NDRGUARD_DEFAULT_SQL_DIR;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if ((a == "--db" || a == "--sql-dir") && i + 1 < args.size()) {
            (a == "--db" ? conninfo : sql_dir) = args[++i];
            continue;
        }
        std::cerr << "ndrguard migrate: unknown or incomplete option '" << a << "'\n\n" << migrate_usage;
        return 2;
    }
    try {
        quarantine::database db(conninfo);
        auto report = quarantine::migrate(db, sql_dir);
        std::cout << "ndrguard migrate: schema_version=" << report.schema_version << " applied=";
        if (report.applied.empty()) std::cout << "none";
        for (std::size_t i = 0; i < report.applied.size(); ++i) std::cout << (i ? "," : "") << report.applied[i];
        std::cout << "\n";
        return 0;
    } catch (const quarantine::database_error& e) {
        std::cerr << "ndrguard migrate: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace ndrguard::app
