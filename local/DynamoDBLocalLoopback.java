// DynamoDB Local listening on 127.0.0.1 only. Its jar has no -host flag (1.25.x) and the Jetty
// server it builds listens on every interface, so this builds the same server from the same
// command line and binds its connectors to loopback before starting it. local/services.py
// compiles it once against the jar and runs it in place of `java -jar DynamoDBLocal.jar`;
// tests/integration/test_services.py checks that nothing listens beyond loopback.

import com.amazonaws.services.dynamodbv2.local.main.CommandLineInput;
import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

public class DynamoDBLocalLoopback {
    public static void main(String[] args) throws Exception {
        if (!new CommandLineInput(args).init()) {
            return; // -help or -version: printed, nothing to serve
        }
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        // The Jetty server is a private field of DynamoDBProxyServer (1.25.x), built unstarted.
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
    }
}
