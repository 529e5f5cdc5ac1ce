using Npgsql;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresIdentityStore(NpgsqlDataSource dataSource) : IIdentityStore
{
    private const string FindSql = "select customer_id from oauth_identities where issuer = @issuer and subject = @subject";

    // One statement: a first sign-in creates the customer and its identity together; a concurrent first sign-in of the
    // same person loses the unique (issuer, subject) race, inserts nothing, and the caller reads the winner's row.
    private const string CreateSql = """
        with customer as (
            insert into customers (id) values (@customer) returning id
        ), identity as (
            insert into oauth_identities (id, customer_id, issuer, subject)
            select @identity, id, @issuer, @subject from customer
            on conflict (issuer, subject) do nothing
            returning customer_id
        )
        select customer_id from identity
        """;

    private const string DropOrphanSql = "delete from customers c where c.id = @customer and not exists (select 1 from oauth_identities i where i.customer_id = c.id)";

    public async Task<SignedInCustomer> FindOrCreateAsync(string issuer, string subject, CancellationToken cancellationToken)
    {
        if (await FindAsync(issuer, subject, cancellationToken) is { } existing)
        {
            return new SignedInCustomer(existing, false);
        }
        var candidate = Guid.CreateVersion7();
        await using (var create = dataSource.CreateCommand(CreateSql))
        {
            create.Parameters.AddWithValue("customer", candidate);
            create.Parameters.AddWithValue("identity", Guid.CreateVersion7());
            create.Parameters.AddWithValue("issuer", issuer);
            create.Parameters.AddWithValue("subject", subject);
            if (await create.ExecuteScalarAsync(cancellationToken) is Guid created)
            {
                return new SignedInCustomer(created, true);
            }
        }
        // Lost the race: the customer row made alongside is an orphan; remove it and use the winner's.
        await using (var drop = dataSource.CreateCommand(DropOrphanSql))
        {
            drop.Parameters.AddWithValue("customer", candidate);
            await drop.ExecuteNonQueryAsync(cancellationToken);
        }
        return new SignedInCustomer(await FindAsync(issuer, subject, cancellationToken)
            ?? throw new InvalidOperationException("Identity vanished between insert and read."), false);
    }

    private async Task<Guid?> FindAsync(string issuer, string subject, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(FindSql);
        command.Parameters.AddWithValue("issuer", issuer);
        command.Parameters.AddWithValue("subject", subject);
        return await command.ExecuteScalarAsync(cancellationToken) as Guid?;
    }
}
