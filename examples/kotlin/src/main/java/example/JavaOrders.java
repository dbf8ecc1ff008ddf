package example;

import io.stanrs.ConnectOptions;
import io.stanrs.Message;
import io.stanrs.StanClient;
import io.stanrs.StartPosition;
import io.stanrs.SubscribeOptions;
import io.stanrs.Subscription;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/** The same client from Java: every suspending call has a CompletableFuture twin. */
public final class JavaOrders {
    private JavaOrders() {}

    /** Publish one message and read it back. */
    public static void run(String url, String cluster) throws Exception {
        ConnectOptions options = new ConnectOptions();
        options.setUrl(url);
        try (StanClient sc = StanClient.connectFuture(cluster, "orders-java", options).get(30, TimeUnit.SECONDS)) {
            String channel = "java-orders-" + System.nanoTime();
            String guid = sc.publishFuture(channel, "from java".getBytes(StandardCharsets.UTF_8))
                    .get(30, TimeUnit.SECONDS);
            SubscribeOptions subOptions = new SubscribeOptions();
            subOptions.setStartAt(StartPosition.First.INSTANCE);
            try (Subscription sub = sc.subscribeFuture(channel, subOptions).get(30, TimeUnit.SECONDS)) {
                Message msg = sub.nextFuture().get(30, TimeUnit.SECONDS);
                if (msg == null || !msg.dataAsString().equals("from java")) {
                    throw new IllegalStateException("unexpected message " + msg);
                }
                System.out.println("java example: OK (published " + guid + ", received #" + msg.getSequence() + ")");
            }
        }
    }
}
